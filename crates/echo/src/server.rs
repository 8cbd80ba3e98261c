//! The event loop: one thread, non-blocking sockets, `poll(2)`.
//!
//! The same loop runs natively and under WASI (wasi-libc maps `poll` to `poll_oneoff` on
//! wasip1 and to `wasi:io/poll` on wasip2), so every build serves connections concurrently with
//! the same model and a comparison measures the runtime, not two different servers. What each
//! connection says and when is decided by its [`Session`]; this loop only moves bytes and
//! sleeps in `poll` until the next socket event or the earliest [`Session::deadline`].

use std::io::{self, ErrorKind, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::Instant;

use crate::config::{Config, Mode};
use crate::session::{Next, READ_CHUNK, Session, wait_until};

/// Opens the listener described by `cfg` (or adopts the one handed in) and prints
/// `listening on <addr>` on stdout, which runtimes read to learn the port.
pub fn listen(cfg: &Config) -> io::Result<TcpListener> {
    let listener = match cfg.listen_fd {
        // SAFETY: the runtime hands this descriptor to the process as a listening socket
        // (`wasmtime run --tcplisten`, `ECHO_LISTEN_FD`); nothing else in the process owns it.
        Some(fd) => unsafe { TcpListener::from_raw_fd(fd) },
        None => TcpListener::bind((cfg.host.as_str(), cfg.port))?,
    };
    listener.set_nonblocking(true)?;
    let mut stdout = io::stdout().lock();
    match listener.local_addr() {
        Ok(addr) => writeln!(stdout, "listening on {addr}")?,
        Err(_) => writeln!(stdout, "listening on fd {}", listener.as_raw_fd())?,
    }
    stdout.flush()?;
    Ok(listener)
}

/// Serves HTTP on `listener` until an unrecoverable listener error.
pub fn serve(cfg: &Config, listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let seed = cfg.mode == Mode::Seed;
    let mut scratch = vec![0u8; READ_CHUNK];
    let mut conns: Vec<Option<(TcpStream, Session)>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut active = 0usize;
    let mut pfds: Vec<libc::pollfd> = Vec::new();
    let mut slots: Vec<usize> = Vec::new();
    loop {
        pfds.clear();
        slots.clear();
        // Seed mode reproduces the demo: the next connection is accepted only when the
        // current one is finished.
        let accepting = !seed || active == 0;
        pfds.push(libc::pollfd {
            fd: listener.as_raw_fd(),
            events: if accepting { libc::POLLIN } else { 0 },
            revents: 0,
        });
        let mut next_deadline: Option<Instant> = None;
        for (i, c) in conns.iter().enumerate() {
            let Some((stream, session)) = c else { continue };
            let want = session.interest();
            let events = if want.write {
                libc::POLLOUT
            } else if want.read {
                libc::POLLIN
            } else {
                0
            };
            pfds.push(libc::pollfd {
                fd: stream.as_raw_fd(),
                events,
                revents: 0,
            });
            slots.push(i);
            let d = session.deadline();
            next_deadline = Some(next_deadline.map_or(d, |n| n.min(d)));
        }
        let timeout_ms = next_deadline.map_or(-1, |d| {
            let ms = wait_until(Instant::now(), d).as_millis();
            ms.min(i32::MAX as u128) as i32
        });
        // SAFETY: `pfds` is a valid, initialised slice of pollfd for the duration of the call.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let now = Instant::now();
        if accepting && pfds[0].revents != 0 {
            loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if stream.set_nonblocking(true).is_err() {
                            continue;
                        }
                        // Not every WASI host implements TCP_NODELAY; the loop batches writes
                        // per response anyway, so a failure here is harmless.
                        let _ = stream.set_nodelay(true);
                        let conn = Some((stream, Session::new(cfg, now)));
                        match free.pop() {
                            Some(i) => conns[i] = conn,
                            None => conns.push(conn),
                        }
                        active += 1;
                        if seed {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    // Aborted handshakes, descriptor exhaustion: keep serving what we have.
                    Err(_) => break,
                }
            }
        }
        for (k, &slot) in slots.iter().enumerate() {
            let revents = pfds[k + 1].revents;
            let Some((stream, session)) = conns[slot].as_mut() else {
                continue;
            };
            // Connections without events are only visited when one of their deadlines is due.
            if revents == 0 && now < session.deadline() {
                continue;
            }
            let readable = revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
            match session.exchange(stream, readable, &mut scratch, now) {
                Next::Keep => {}
                Next::Linger => {
                    let _ = stream.shutdown(Shutdown::Write);
                }
                Next::Close => {
                    let _ = stream.shutdown(Shutdown::Write);
                    conns[slot] = None;
                    free.push(slot);
                    active -= 1;
                }
            }
        }
    }
}
