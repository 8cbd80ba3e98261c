//! The syscall numbers behind each [`SyscallKind`], as ftrace filters on `raw_syscalls:sys_enter`.

use wasmbench_vocab::SyscallKind;

/// Syscall numbers of `kind` on this architecture (empty for [`SyscallKind::All`]).
pub(crate) fn numbers(kind: SyscallKind) -> Vec<libc::c_long> {
    use libc::*;
    match kind {
        SyscallKind::All => vec![],
        SyscallKind::Poll => {
            let mut v = vec![SYS_ppoll, SYS_pselect6, SYS_epoll_pwait, SYS_epoll_pwait2];
            // Legacy entry points that newer architectures (aarch64, riscv64) do not have.
            #[cfg(target_arch = "x86_64")]
            v.extend([SYS_poll, SYS_select, SYS_epoll_wait]);
            v
        }
        SyscallKind::Read => vec![
            SYS_read,
            SYS_readv,
            SYS_pread64,
            SYS_preadv,
            SYS_preadv2,
            SYS_recvfrom,
            SYS_recvmsg,
            SYS_recvmmsg,
        ],
        SyscallKind::Write => vec![
            SYS_write,
            SYS_writev,
            SYS_pwrite64,
            SYS_pwritev,
            SYS_pwritev2,
            SYS_sendto,
            SYS_sendmsg,
            SYS_sendmmsg,
            SYS_sendfile,
        ],
        SyscallKind::Accept => {
            let mut v = vec![SYS_accept4];
            #[cfg(target_arch = "x86_64")]
            v.push(SYS_accept);
            v
        }
    }
}

/// The ftrace filter selecting `kind`, `None` for every syscall.
pub(crate) fn filter(kind: SyscallKind) -> Option<String> {
    let n = numbers(kind);
    (!n.is_empty()).then(|| {
        n.iter()
            .map(|n| format!("id == {n}"))
            .collect::<Vec<_>>()
            .join(" || ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_do_not_overlap_and_every_kind_but_all_has_numbers() {
        let mut seen = std::collections::BTreeSet::new();
        for &k in SyscallKind::ALL {
            if k == SyscallKind::All {
                assert!(filter(k).is_none());
                continue;
            }
            let n = numbers(k);
            assert!(!n.is_empty(), "{k}");
            for x in n {
                assert!(seen.insert(x), "{x} in two kinds");
            }
        }
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            filter(SyscallKind::Accept).as_deref(),
            Some("id == 288 || id == 43")
        );
    }
}
