//! WASI preview 1 sockets for the embedded host.
//!
//! Wasmtime 48's preview 1 implementation has no socket descriptors (preopened listeners went
//! away with `wasi-common`), yet the `wasm32-wasip1` workload serves a listener handed to it at
//! descriptor 3, as `wasmtime run --tcplisten` used to do. This module keeps that ABI working:
//! the host binds the listener itself and, after `wasmtime_wasi::p1::add_to_linker_sync`,
//! shadows the `wasi_snapshot_preview1` functions a socket server calls. Descriptors in this
//! module's table (the listener at [`LISTEN_FD`], accepted connections from [`CONN_BASE`]) are
//! real non-blocking-capable host sockets; stdio is written to the host's stdio; every other
//! descriptor is unknown (`EBADF`), exactly as with the default context, which has no
//! preopened directories.
//!
//! Layouts and errno values follow `witx/p1/typenames.witx` of `wasi_snapshot_preview1`.

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use ::wasmtime::{Caller, Extern, Linker};
use wasmtime_wasi::p1::WasiP1Ctx;

/// Descriptor of the preopened listener (what `wasmtime run --tcplisten` used).
pub const LISTEN_FD: u32 = 3;
/// First descriptor of accepted connections; far above anything the WASI context hands out.
pub const CONN_BASE: u32 = 1024;
/// Most connections open at once (the OS descriptor limit usually comes first).
const MAX_CONNS: usize = 1 << 16;
/// Longest single wait inside `poll_oneoff`, so a stopping host is noticed promptly.
const POLL_SLICE: Duration = Duration::from_millis(100);

// errno (typenames.witx `$errno`).
const SUCCESS: i32 = 0;
const E_ACCES: i32 = 2;
const E_ADDRINUSE: i32 = 3;
const E_ADDRNOTAVAIL: i32 = 4;
const E_AGAIN: i32 = 6;
const E_BADF: i32 = 8;
const E_CONNABORTED: i32 = 13;
const E_CONNREFUSED: i32 = 14;
const E_CONNRESET: i32 = 15;
const E_FAULT: i32 = 21;
const E_HOSTUNREACH: i32 = 23;
const E_INTR: i32 = 27;
const E_INVAL: i32 = 28;
const E_IO: i32 = 29;
const E_ISCONN: i32 = 30;
const E_MFILE: i32 = 33;
const E_MSGSIZE: i32 = 35;
const E_NETDOWN: i32 = 38;
const E_NETUNREACH: i32 = 40;
const E_NFILE: i32 = 41;
const E_NOBUFS: i32 = 42;
const E_NOMEM: i32 = 48;
const E_NOTCONN: i32 = 53;
const E_NOTSOCK: i32 = 57;
const E_NOTSUP: i32 = 58;
const E_PERM: i32 = 63;
const E_PIPE: i32 = 64;
const E_TIMEDOUT: i32 = 73;

// filetype, fdflags, eventtype, eventrwflags, subclockflags, riflags, sdflags.
const FILETYPE_CHARACTER_DEVICE: u8 = 2;
const FILETYPE_SOCKET_STREAM: u8 = 6;
const FDFLAGS_APPEND: i32 = 1;
const FDFLAGS_NONBLOCK: i32 = 4;
const EVENTTYPE_CLOCK: u8 = 0;
const EVENTTYPE_FD_READ: u8 = 1;
const EVENTTYPE_FD_WRITE: u8 = 2;
const EVENTRWFLAGS_HANGUP: u16 = 1;
const SUBCLOCKFLAGS_ABSTIME: u16 = 1;
const CLOCKID_REALTIME: u32 = 0;
const CLOCKID_MONOTONIC: u32 = 1;
const RIFLAGS_PEEK: i32 = 1;
const RIFLAGS_WAITALL: i32 = 2;
const SDFLAGS_RD: i32 = 1;
const SDFLAGS_WR: i32 = 2;
/// All 30 rights of `$rights`.
const ALL_RIGHTS: u64 = (1 << 30) - 1;

const SUBSCRIPTION_SIZE: usize = 48;
const EVENT_SIZE: usize = 32;

/// State of one preview 1 guest: the WASI context plus this module's sockets.
pub struct P1State {
    /// The standard preview 1 context (environment, clocks, random, exit, ...).
    pub wasi: WasiP1Ctx,
    /// Sockets served by this module.
    pub net: SocketTable,
    /// Guest resource limits.
    pub limits: ::wasmtime::StoreLimits,
}

impl std::fmt::Debug for P1State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P1State")
            .field("net", &self.net)
            .finish_non_exhaustive()
    }
}

/// Host sockets visible to the guest.
pub struct SocketTable {
    listener: Option<TcpListener>,
    conns: Vec<Option<TcpStream>>,
    nonblocking: Vec<bool>,
    listener_nonblocking: bool,
    free: Vec<usize>,
    /// Instant that the guest's monotonic clock counts from (see [`SharedMonotonic`]).
    monotonic_base: Instant,
    shutdown: Arc<AtomicBool>,
    pfds: Vec<libc::pollfd>,
    subs: Vec<Sub>,
}

impl std::fmt::Debug for SocketTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketTable")
            .field("listener", &self.listener)
            .field("open_conns", &self.conns.iter().flatten().count())
            .finish_non_exhaustive()
    }
}

impl SocketTable {
    /// A table with `listener` preopened at [`LISTEN_FD`]. `poll_oneoff` traps once `shutdown`
    /// is set, which is how the host stops a guest that waits for connections.
    pub fn new(listener: TcpListener, monotonic_base: Instant, shutdown: Arc<AtomicBool>) -> Self {
        SocketTable {
            listener: Some(listener),
            conns: Vec::new(),
            nonblocking: Vec::new(),
            listener_nonblocking: false,
            free: Vec::new(),
            monotonic_base,
            shutdown,
            pfds: Vec::new(),
            subs: Vec::new(),
        }
    }

    fn conn_slot(&self, fd: i32) -> Option<usize> {
        let fd = u32::try_from(fd).ok()?;
        let slot = fd.checked_sub(CONN_BASE)? as usize;
        self.conns.get(slot)?.as_ref().map(|_| slot)
    }

    fn is_listener(&self, fd: i32) -> bool {
        fd == LISTEN_FD as i32 && self.listener.is_some()
    }

    /// Host descriptor behind a guest socket descriptor.
    fn host_fd(&self, fd: i32) -> Option<i32> {
        if self.is_listener(fd) {
            return self.listener.as_ref().map(|l| l.as_raw_fd());
        }
        self.conn_slot(fd)
            .and_then(|s| self.conns[s].as_ref().map(|c| c.as_raw_fd()))
    }

    fn insert(&mut self, s: TcpStream, nonblocking: bool) -> Option<u32> {
        let slot = match self.free.pop() {
            Some(i) => {
                self.conns[i] = Some(s);
                self.nonblocking[i] = nonblocking;
                i
            }
            None if self.conns.len() < MAX_CONNS => {
                self.conns.push(Some(s));
                self.nonblocking.push(nonblocking);
                self.conns.len() - 1
            }
            None => return None,
        };
        Some(CONN_BASE + slot as u32)
    }
}

/// A monotonic clock for the WASI context whose zero is a known host `Instant`, so absolute
/// monotonic deadlines in `poll_oneoff` can be converted to host time.
#[derive(Debug, Clone, Copy)]
pub struct SharedMonotonic(pub Instant);

impl wasmtime_wasi::HostMonotonicClock for SharedMonotonic {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

#[derive(Debug, Clone, Copy)]
enum SubKind {
    /// fd subscription backed by `pfds[index]`.
    Fd { write: bool, pfd: usize },
    /// fd subscription answered without waiting (stdio, unknown descriptors).
    Immediate { write: bool, error: u16 },
    /// Clock subscription that fires at the deadline.
    Clock { deadline: Instant },
    /// Clock subscription that cannot be served.
    ClockError { error: u16 },
}

#[derive(Debug, Clone, Copy)]
struct Sub {
    userdata: u64,
    kind: SubKind,
}

fn errno_of(e: &std::io::Error) -> i32 {
    match e.raw_os_error() {
        Some(libc::EAGAIN) => E_AGAIN,
        Some(libc::EBADF) => E_BADF,
        Some(libc::ECONNABORTED) => E_CONNABORTED,
        Some(libc::ECONNREFUSED) => E_CONNREFUSED,
        Some(libc::ECONNRESET) => E_CONNRESET,
        Some(libc::EINTR) => E_INTR,
        Some(libc::EINVAL) => E_INVAL,
        Some(libc::EISCONN) => E_ISCONN,
        Some(libc::EMFILE) => E_MFILE,
        Some(libc::ENFILE) => E_NFILE,
        Some(libc::ENOBUFS) => E_NOBUFS,
        Some(libc::ENOMEM) => E_NOMEM,
        Some(libc::ENOTCONN) => E_NOTCONN,
        Some(libc::ENOTSOCK) => E_NOTSOCK,
        Some(libc::EOPNOTSUPP) => E_NOTSUP,
        Some(libc::EPIPE) => E_PIPE,
        Some(libc::ETIMEDOUT) => E_TIMEDOUT,
        Some(libc::EACCES) => E_ACCES,
        Some(libc::EPERM) => E_PERM,
        Some(libc::EADDRINUSE) => E_ADDRINUSE,
        Some(libc::EADDRNOTAVAIL) => E_ADDRNOTAVAIL,
        Some(libc::ENETDOWN) => E_NETDOWN,
        Some(libc::ENETUNREACH) => E_NETUNREACH,
        Some(libc::EHOSTUNREACH) => E_HOSTUNREACH,
        Some(libc::EMSGSIZE) => E_MSGSIZE,
        _ => E_IO,
    }
}

fn last_errno() -> i32 {
    errno_of(&std::io::Error::last_os_error())
}

/// The guest's exported memory and the store data, borrowed together.
fn memory<'a>(
    caller: &'a mut Caller<'_, P1State>,
) -> ::wasmtime::Result<(&'a mut [u8], &'a mut P1State)> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m.data_and_store_mut(caller)),
        _ => Err(::wasmtime::Error::msg(
            "the module exports no `memory`; it is not a WASI command",
        )),
    }
}

fn read_u32(mem: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(mem.get(at..at + 4)?.try_into().ok()?))
}

fn read_u64(mem: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(mem.get(at..at + 8)?.try_into().ok()?))
}

fn write_u32(mem: &mut [u8], at: i32, v: u32) -> i32 {
    match usize::try_from(at).ok().and_then(|a| mem.get_mut(a..a + 4)) {
        Some(dst) => {
            dst.copy_from_slice(&v.to_le_bytes());
            SUCCESS
        }
        None => E_FAULT,
    }
}

/// The `i`th (c)iovec of the array at `iovs`: a bounds-checked (offset, length) in memory.
fn iovec(mem: &[u8], iovs: i32, i: usize) -> Result<(usize, usize), i32> {
    let base = usize::try_from(iovs).map_err(|_| E_FAULT)? + i * 8;
    let buf = read_u32(mem, base).ok_or(E_FAULT)? as usize;
    let len = read_u32(mem, base + 4).ok_or(E_FAULT)? as usize;
    if buf.checked_add(len).is_none_or(|end| end > mem.len()) {
        return Err(E_FAULT);
    }
    Ok((buf, len))
}

/// readv over a host socket straight into guest memory; returns bytes read or errno.
fn sock_readv(mem: &mut [u8], host_fd: i32, iovs: i32, n: i32, flags: i32) -> Result<u32, i32> {
    let mut total = 0usize;
    for i in 0..usize::try_from(n).map_err(|_| E_INVAL)? {
        let (buf, len) = iovec(mem, iovs, i)?;
        if len == 0 {
            continue;
        }
        let dst = &mut mem[buf..buf + len];
        // SAFETY: `dst` is a valid writable region of `len` bytes for the duration of the call.
        let r = unsafe { libc::recv(host_fd, dst.as_mut_ptr().cast(), len, flags) };
        if r < 0 {
            if total > 0 {
                break;
            }
            return Err(last_errno());
        }
        total += r as usize;
        if (r as usize) < len {
            break;
        }
    }
    u32::try_from(total).map_err(|_| E_INVAL)
}

/// writev from guest memory to a host socket; returns bytes written or errno.
fn sock_writev(mem: &[u8], host_fd: i32, iovs: i32, n: i32) -> Result<u32, i32> {
    let mut total = 0usize;
    for i in 0..usize::try_from(n).map_err(|_| E_INVAL)? {
        let (buf, len) = iovec(mem, iovs, i)?;
        if len == 0 {
            continue;
        }
        let src = &mem[buf..buf + len];
        // SAFETY: `src` is a valid readable region of `len` bytes; MSG_NOSIGNAL turns a closed
        // peer into EPIPE instead of killing the host with SIGPIPE.
        let r = unsafe { libc::send(host_fd, src.as_ptr().cast(), len, libc::MSG_NOSIGNAL) };
        if r < 0 {
            if total > 0 {
                break;
            }
            return Err(last_errno());
        }
        total += r as usize;
        if (r as usize) < len {
            break;
        }
    }
    u32::try_from(total).map_err(|_| E_INVAL)
}

fn stdio_writev(mem: &[u8], fd: i32, iovs: i32, n: i32) -> Result<u32, i32> {
    let mut total = 0usize;
    let mut write = |out: &mut dyn Write| -> Result<(), i32> {
        for i in 0..usize::try_from(n).map_err(|_| E_INVAL)? {
            let (buf, len) = iovec(mem, iovs, i)?;
            out.write_all(&mem[buf..buf + len])
                .map_err(|e| errno_of(&e))?;
            total += len;
        }
        // The guest's writes are unbuffered system calls; keep them visible in order.
        out.flush().map_err(|e| errno_of(&e))
    };
    if fd == 1 {
        write(&mut std::io::stdout().lock())?;
    } else {
        write(&mut std::io::stderr().lock())?;
    }
    u32::try_from(total).map_err(|_| E_INVAL)
}

fn result_u32(mem: &mut [u8], r: Result<u32, i32>, out: i32) -> i32 {
    match r {
        Ok(v) => write_u32(mem, out, v),
        Err(e) => e,
    }
}

/// Shadows the socket-related `wasi_snapshot_preview1` functions in `linker`, which must
/// already hold `wasmtime_wasi::p1::add_to_linker_sync`.
pub fn add_to_linker(linker: &mut Linker<P1State>) -> ::wasmtime::Result<()> {
    const M: &str = "wasi_snapshot_preview1";
    linker.allow_shadowing(true);

    linker.func_wrap(
        M,
        "fd_read",
        |mut caller: Caller<'_, P1State>,
         fd: i32,
         iovs: i32,
         n: i32,
         nread: i32|
         -> ::wasmtime::Result<i32> {
            let (mem, st) = memory(&mut caller)?;
            let r = match st.net.host_fd(fd) {
                Some(_) if st.net.is_listener(fd) => Err(E_NOTCONN),
                Some(h) => sock_readv(mem, h, iovs, n, 0),
                // Standard input is empty, as in the default WASI context.
                None if fd == 0 => Ok(0),
                None => Err(E_BADF),
            };
            Ok(result_u32(mem, r, nread))
        },
    )?;

    linker.func_wrap(
        M,
        "fd_write",
        |mut caller: Caller<'_, P1State>,
         fd: i32,
         iovs: i32,
         n: i32,
         nwritten: i32|
         -> ::wasmtime::Result<i32> {
            let (mem, st) = memory(&mut caller)?;
            let r = match st.net.host_fd(fd) {
                Some(_) if st.net.is_listener(fd) => Err(E_NOTCONN),
                Some(h) => sock_writev(mem, h, iovs, n),
                None if fd == 1 || fd == 2 => stdio_writev(mem, fd, iovs, n),
                None => Err(E_BADF),
            };
            Ok(result_u32(mem, r, nwritten))
        },
    )?;

    linker.func_wrap(
        M,
        "fd_close",
        |mut caller: Caller<'_, P1State>, fd: i32| -> ::wasmtime::Result<i32> {
            let net = &mut caller.data_mut().net;
            if net.is_listener(fd) {
                net.listener = None;
                return Ok(SUCCESS);
            }
            if let Some(slot) = net.conn_slot(fd) {
                net.conns[slot] = None;
                net.free.push(slot);
                return Ok(SUCCESS);
            }
            // Closing stdio is allowed and has no effect on the host's own streams.
            Ok(if (0..=2).contains(&fd) {
                SUCCESS
            } else {
                E_BADF
            })
        },
    )?;

    linker.func_wrap(
        M,
        "fd_fdstat_get",
        |mut caller: Caller<'_, P1State>, fd: i32, out: i32| -> ::wasmtime::Result<i32> {
            let (mem, st) = memory(&mut caller)?;
            let (filetype, flags) = if st.net.is_listener(fd) {
                (
                    FILETYPE_SOCKET_STREAM,
                    if st.net.listener_nonblocking {
                        FDFLAGS_NONBLOCK
                    } else {
                        0
                    },
                )
            } else if let Some(slot) = st.net.conn_slot(fd) {
                (
                    FILETYPE_SOCKET_STREAM,
                    if st.net.nonblocking[slot] {
                        FDFLAGS_NONBLOCK
                    } else {
                        0
                    },
                )
            } else if (0..=2).contains(&fd) {
                (
                    FILETYPE_CHARACTER_DEVICE,
                    if fd == 0 { 0 } else { FDFLAGS_APPEND },
                )
            } else {
                return Ok(E_BADF);
            };
            // fdstat: fs_filetype u8 @0, fs_flags u16 @2, rights_base u64 @8,
            // rights_inheriting u64 @16; 24 bytes.
            let Some(dst) = usize::try_from(out)
                .ok()
                .and_then(|o| mem.get_mut(o..o + 24))
            else {
                return Ok(E_FAULT);
            };
            dst.fill(0);
            dst[0] = filetype;
            dst[2..4].copy_from_slice(&(flags as u16).to_le_bytes());
            dst[8..16].copy_from_slice(&ALL_RIGHTS.to_le_bytes());
            dst[16..24].copy_from_slice(&ALL_RIGHTS.to_le_bytes());
            Ok(SUCCESS)
        },
    )?;

    linker.func_wrap(
        M,
        "fd_fdstat_set_flags",
        |mut caller: Caller<'_, P1State>, fd: i32, flags: i32| -> ::wasmtime::Result<i32> {
            let net = &mut caller.data_mut().net;
            if flags & !(FDFLAGS_NONBLOCK | FDFLAGS_APPEND) != 0 {
                return Ok(E_NOTSUP);
            }
            let nb = flags & FDFLAGS_NONBLOCK != 0;
            let r = if net.is_listener(fd) {
                let r = net.listener.as_ref().map(|l| l.set_nonblocking(nb));
                if matches!(r, Some(Ok(()))) {
                    net.listener_nonblocking = nb;
                }
                r
            } else if let Some(slot) = net.conn_slot(fd) {
                let r = net.conns[slot].as_ref().map(|c| c.set_nonblocking(nb));
                if matches!(r, Some(Ok(()))) {
                    net.nonblocking[slot] = nb;
                }
                r
            } else if (0..=2).contains(&fd) {
                return Ok(if nb { E_NOTSUP } else { SUCCESS });
            } else {
                return Ok(E_BADF);
            };
            Ok(match r {
                Some(Ok(())) => SUCCESS,
                Some(Err(e)) => errno_of(&e),
                None => E_BADF,
            })
        },
    )?;

    linker.func_wrap(
        M,
        "sock_accept",
        |mut caller: Caller<'_, P1State>,
         fd: i32,
         flags: i32,
         out_fd: i32|
         -> ::wasmtime::Result<i32> {
            let (mem, st) = memory(&mut caller)?;
            let net = &mut st.net;
            if !net.is_listener(fd) {
                return Ok(if net.conn_slot(fd).is_some() {
                    E_INVAL
                } else {
                    E_BADF
                });
            }
            if flags & !FDFLAGS_NONBLOCK != 0 {
                return Ok(E_INVAL);
            }
            let Some(listener) = net.listener.as_ref() else {
                return Ok(E_BADF);
            };
            let stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) => return Ok(errno_of(&e)),
            };
            let nb = flags & FDFLAGS_NONBLOCK != 0;
            if let Err(e) = stream.set_nonblocking(nb) {
                return Ok(errno_of(&e));
            }
            // The echo asks for TCP_NODELAY in every build, but std cannot express it on
            // wasip1; set it here so all variants use the same listener options.
            let _ = stream.set_nodelay(true);
            match net.insert(stream, nb) {
                Some(new_fd) => Ok(write_u32(mem, out_fd, new_fd)),
                None => Ok(E_MFILE),
            }
        },
    )?;

    linker.func_wrap(
        M,
        "sock_recv",
        |mut caller: Caller<'_, P1State>,
         fd: i32,
         iovs: i32,
         n: i32,
         ri_flags: i32,
         out_len: i32,
         out_flags: i32|
         -> ::wasmtime::Result<i32> {
            let (mem, st) = memory(&mut caller)?;
            let Some(h) = st.net.conn_slot(fd).and_then(|_| st.net.host_fd(fd)) else {
                return Ok(if st.net.is_listener(fd) {
                    E_NOTCONN
                } else {
                    E_BADF
                });
            };
            if ri_flags & !(RIFLAGS_PEEK | RIFLAGS_WAITALL) != 0 {
                return Ok(E_INVAL);
            }
            let mut flags = 0;
            if ri_flags & RIFLAGS_PEEK != 0 {
                flags |= libc::MSG_PEEK;
            }
            if ri_flags & RIFLAGS_WAITALL != 0 {
                flags |= libc::MSG_WAITALL;
            }
            let r = sock_readv(mem, h, iovs, n, flags);
            let e = result_u32(mem, r, out_len);
            if e != SUCCESS {
                return Ok(e);
            }
            // roflags (u16): a stream socket never truncates.
            Ok(
                match usize::try_from(out_flags)
                    .ok()
                    .and_then(|o| mem.get_mut(o..o + 2))
                {
                    Some(dst) => {
                        dst.fill(0);
                        SUCCESS
                    }
                    None => E_FAULT,
                },
            )
        },
    )?;

    linker.func_wrap(
        M,
        "sock_send",
        |mut caller: Caller<'_, P1State>,
         fd: i32,
         iovs: i32,
         n: i32,
         _si_flags: i32,
         out: i32|
         -> ::wasmtime::Result<i32> {
            let (mem, st) = memory(&mut caller)?;
            let Some(h) = st.net.conn_slot(fd).and_then(|_| st.net.host_fd(fd)) else {
                return Ok(if st.net.is_listener(fd) {
                    E_NOTCONN
                } else {
                    E_BADF
                });
            };
            let r = sock_writev(mem, h, iovs, n);
            Ok(result_u32(mem, r, out))
        },
    )?;

    linker.func_wrap(
        M,
        "sock_shutdown",
        |mut caller: Caller<'_, P1State>, fd: i32, how: i32| -> ::wasmtime::Result<i32> {
            let net = &mut caller.data_mut().net;
            let Some(slot) = net.conn_slot(fd) else {
                return Ok(if net.is_listener(fd) {
                    E_NOTCONN
                } else {
                    E_BADF
                });
            };
            let how = match how {
                SDFLAGS_RD => Shutdown::Read,
                SDFLAGS_WR => Shutdown::Write,
                x if x == SDFLAGS_RD | SDFLAGS_WR => Shutdown::Both,
                _ => return Ok(E_INVAL),
            };
            Ok(match net.conns[slot].as_ref().map(|c| c.shutdown(how)) {
                Some(Ok(())) => SUCCESS,
                Some(Err(e)) => errno_of(&e),
                None => E_BADF,
            })
        },
    )?;

    linker.func_wrap(
        M,
        "poll_oneoff",
        |mut caller: Caller<'_, P1State>,
         input: i32,
         output: i32,
         nsubs: i32,
         nevents: i32|
         -> ::wasmtime::Result<i32> {
            let (mem, st) = memory(&mut caller)?;
            poll_oneoff(mem, &mut st.net, input, output, nsubs, nevents)
        },
    )?;
    Ok(())
}

/// `poll_oneoff` over host sockets with `ppoll(2)`; clock subscriptions become its timeout.
fn poll_oneoff(
    mem: &mut [u8],
    net: &mut SocketTable,
    input: i32,
    output: i32,
    nsubs: i32,
    nevents_out: i32,
) -> ::wasmtime::Result<i32> {
    let Ok(nsubs) = usize::try_from(nsubs) else {
        return Ok(E_INVAL);
    };
    if nsubs == 0 {
        return Ok(E_INVAL);
    }
    let (Ok(input), Ok(output)) = (usize::try_from(input), usize::try_from(output)) else {
        return Ok(E_FAULT);
    };
    let in_end = nsubs
        .checked_mul(SUBSCRIPTION_SIZE)
        .and_then(|l| l.checked_add(input));
    let out_end = nsubs
        .checked_mul(EVENT_SIZE)
        .and_then(|l| l.checked_add(output));
    if in_end.is_none_or(|e| e > mem.len()) || out_end.is_none_or(|e| e > mem.len()) {
        return Ok(E_FAULT);
    }

    let now = Instant::now();
    let mut pfds = std::mem::take(&mut net.pfds);
    let mut subs = std::mem::take(&mut net.subs);
    pfds.clear();
    subs.clear();
    let mut deadline: Option<Instant> = None;
    let mut immediate = false;
    for i in 0..nsubs {
        // subscription: userdata u64 @0, tag u8 @8, union payload @16 (48 bytes).
        let at = input + i * SUBSCRIPTION_SIZE;
        let userdata = read_u64(mem, at).unwrap_or(0);
        let tag = mem[at + 8];
        let kind = match tag {
            EVENTTYPE_CLOCK => {
                // subscription_clock: id u32 @0, timeout u64 @8, precision u64 @16, flags u16 @24.
                let id = read_u32(mem, at + 16).unwrap_or(u32::MAX);
                let timeout = read_u64(mem, at + 24).unwrap_or(0);
                let flags = u16::from_le_bytes([mem[at + 40], mem[at + 41]]);
                let abs = flags & SUBCLOCKFLAGS_ABSTIME != 0;
                let wait = match (id, abs) {
                    (CLOCKID_REALTIME | CLOCKID_MONOTONIC, false) => {
                        Some(Duration::from_nanos(timeout))
                    }
                    (CLOCKID_MONOTONIC, true) => Some(
                        (net.monotonic_base + Duration::from_nanos(timeout))
                            .saturating_duration_since(now),
                    ),
                    (CLOCKID_REALTIME, true) => Some(
                        (SystemTime::UNIX_EPOCH + Duration::from_nanos(timeout))
                            .duration_since(SystemTime::now())
                            .unwrap_or(Duration::ZERO),
                    ),
                    _ => None,
                };
                match wait {
                    Some(w) => {
                        // A deadline beyond what `Instant` can hold is as good as never.
                        let d = now
                            .checked_add(w)
                            .unwrap_or(now + Duration::from_secs(100 * 365 * 86_400));
                        deadline = Some(deadline.map_or(d, |x| x.min(d)));
                        SubKind::Clock { deadline: d }
                    }
                    None => {
                        immediate = true;
                        SubKind::ClockError {
                            error: E_INVAL as u16,
                        }
                    }
                }
            }
            EVENTTYPE_FD_READ | EVENTTYPE_FD_WRITE => {
                let write = tag == EVENTTYPE_FD_WRITE;
                let fd = read_u32(mem, at + 16).unwrap_or(u32::MAX) as i32;
                match net.host_fd(fd) {
                    Some(h) => {
                        pfds.push(libc::pollfd {
                            fd: h,
                            events: if write { libc::POLLOUT } else { libc::POLLIN },
                            revents: 0,
                        });
                        SubKind::Fd {
                            write,
                            pfd: pfds.len() - 1,
                        }
                    }
                    None => {
                        immediate = true;
                        // Standard output and error are always writable and standard input
                        // is always at end of file, as in the default WASI context.
                        let ok = match fd {
                            0 => !write,
                            1 | 2 => write,
                            _ => false,
                        };
                        SubKind::Immediate {
                            write,
                            error: if ok { 0 } else { E_BADF as u16 },
                        }
                    }
                }
            }
            _ => {
                net.pfds = pfds;
                net.subs = subs;
                return Ok(E_INVAL);
            }
        };
        subs.push(Sub { userdata, kind });
    }

    // Wait in slices so a stopping host is noticed while the guest idles.
    loop {
        let left = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => POLL_SLICE,
        };
        let wait = if immediate {
            Duration::ZERO
        } else {
            left.min(POLL_SLICE)
        };
        let ts = libc::timespec {
            tv_sec: wait.as_secs() as libc::time_t,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `pfds` is a valid slice of pollfd; `ts` lives across the call.
        let n = unsafe {
            libc::ppoll(
                pfds.as_mut_ptr(),
                pfds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            net.pfds = pfds;
            net.subs = subs;
            return Ok(errno_of(&e));
        }
        if n > 0 || immediate || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if net.shutdown.load(Ordering::Relaxed) {
            net.pfds = pfds;
            net.subs = subs;
            return Err(::wasmtime::Error::msg("the host is shutting down"));
        }
    }

    let now = Instant::now();
    let mut count = 0usize;
    for sub in &subs {
        // event: userdata u64 @0, error u16 @8, type u8 @10, fd_readwrite { nbytes u64 @16,
        // flags u16 @24 } (32 bytes).
        let (ty, error, nbytes, flags) = match sub.kind {
            SubKind::Clock { deadline } if deadline <= now => (EVENTTYPE_CLOCK, 0u16, 0u64, 0u16),
            SubKind::Clock { .. } => continue,
            SubKind::ClockError { error } => (EVENTTYPE_CLOCK, error, 0, 0),
            SubKind::Immediate { write, error } => (
                if write {
                    EVENTTYPE_FD_WRITE
                } else {
                    EVENTTYPE_FD_READ
                },
                error,
                0,
                0,
            ),
            SubKind::Fd { write, pfd } => {
                let p = pfds[pfd];
                let re = p.revents;
                if re == 0 {
                    continue;
                }
                let hup = if re & libc::POLLHUP != 0 {
                    EVENTRWFLAGS_HANGUP
                } else {
                    0
                };
                if re & libc::POLLNVAL != 0 {
                    (EVENTTYPE_FD_READ + u8::from(write), E_BADF as u16, 0, 0)
                } else if write {
                    if re & libc::POLLOUT != 0 {
                        (EVENTTYPE_FD_WRITE, 0, 0, hup)
                    } else {
                        (EVENTTYPE_FD_WRITE, E_PIPE as u16, 0, hup)
                    }
                } else {
                    let mut avail: libc::c_int = 0;
                    // SAFETY: FIONREAD writes one c_int to `avail`.
                    if unsafe { libc::ioctl(p.fd, libc::FIONREAD, &mut avail) } < 0 {
                        avail = 0;
                    }
                    (EVENTTYPE_FD_READ, 0, avail.max(0) as u64, hup)
                }
            }
        };
        let at = output + count * EVENT_SIZE;
        let ev = &mut mem[at..at + EVENT_SIZE];
        ev.fill(0);
        ev[0..8].copy_from_slice(&sub.userdata.to_le_bytes());
        ev[8..10].copy_from_slice(&error.to_le_bytes());
        ev[10] = ty;
        ev[16..24].copy_from_slice(&nbytes.to_le_bytes());
        ev[24..26].copy_from_slice(&flags.to_le_bytes());
        count += 1;
    }
    net.pfds = pfds;
    net.subs = subs;
    Ok(write_u32(mem, nevents_out, count as u32))
}
