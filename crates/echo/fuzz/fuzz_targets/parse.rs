//! Fuzzes `http::parse`: any input must map to a decision without panicking, never claim more
//! bytes than it was given, and respect the limits.
//!
//! Run: `cd crates/echo/fuzz && cargo +nightly fuzz run parse -- -max_total_time=600`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmbench_echo::http::{Limits, Parsed, chunked_framing_limit, parse};

fuzz_target!(|data: &[u8]| {
    // The first two bytes pick the limits so small and large limits are both explored.
    let (limits, buf) = match data {
        [a, b, rest @ ..] => (
            Limits {
                max_header_bytes: 64 + usize::from(*a) * 64,
                max_body_bytes: usize::from(*b) * 256,
            },
            rest,
        ),
        _ => return,
    };
    match parse(buf, limits) {
        Parsed::Complete(req, used) => {
            assert!(used > 0 && used <= buf.len());
            assert!(req.body.as_bytes().len() <= limits.max_body_bytes);
        }
        Parsed::Incomplete {
            head_done,
            need_total,
            ..
        } => {
            if let Some(total) = need_total {
                assert!(head_done && total > buf.len());
            }
            let most = if head_done {
                limits.max_header_bytes + chunked_framing_limit(limits)
            } else {
                limits.max_header_bytes
            };
            assert!(buf.len() <= most);
        }
        Parsed::Rejected(r) => assert!(matches!(r.status, 400 | 413 | 417 | 431)),
    }
});
