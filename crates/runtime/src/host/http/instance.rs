//! One `wasi:http` instance and its store: what each holds, when a new one is made, how many
//! requests it answers and how long it may idle.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ::wasmtime::component::{GuestTaskId, ResourceTable};
use ::wasmtime::{Engine, Store, StoreContextMut, StoreLimits, StoreLimitsBuilder};
use tokio::sync::Semaphore;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::outbound::OutboundPolicy;

/// How long an instance kept for reuse may sit idle before it is dropped.
const IDLE_INSTANCE_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-store state: WASI, `wasi:http`, the outbound policy and the memory limit.
pub(super) struct HostData {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundPolicy,
    limits: StoreLimits,
}

impl WasiView for HostData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostData {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The dispatcher's application state: how to make a new store and instance.
pub(super) struct Handler {
    pub(super) engine: Engine,
    pub(super) pre: ProxyPre<HostData>,
    pub(super) max_memory_bytes: usize,
    pub(super) instance_reuse: usize,
    pub(super) allow_outbound: Arc<[SocketAddr]>,
    /// Environment of every instance.
    pub(super) env: Vec<(String, String)>,
    /// Host directories every instance may open.
    pub(super) dirs: Vec<crate::launch::Preopen>,
    /// Permits for the requests handled at once.
    pub(super) requests: Semaphore,
    pub(super) next_instance: AtomicU64,
}

impl HandlerState for Handler {
    type StoreData = HostData;
    type WorkerExpiration = IdleExpiration;
    type WorkerState = ReuseLimit;

    async fn instantiate(
        &self,
    ) -> ::wasmtime::Result<Instance<HostData, IdleExpiration, ReuseLimit>> {
        self.next_instance.fetch_add(1, Ordering::Relaxed);
        let data = HostData {
            table: ResourceTable::new(),
            // No arguments; only the environment and directories the user gave; stderr is
            // kept so guest panics are visible.
            wasi: {
                let mut b = WasiCtx::builder();
                b.inherit_stderr().envs(&self.env);
                crate::host::engine::preopen(&mut b, &self.dirs)?;
                b.build()
            },
            http: WasiHttpCtx::new(),
            hooks: OutboundPolicy {
                allow: Arc::clone(&self.allow_outbound),
            },
            limits: StoreLimitsBuilder::new()
                .memory_size(self.max_memory_bytes)
                .build(),
        };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|d| &mut d.limits);
        let proxy = self.pre.instantiate_async(&mut store).await?;
        Ok(Instance {
            store,
            proxy,
            view: WasiHttpView::http,
            expiration: IdleExpiration {
                sleep: Box::pin(tokio::time::sleep(Duration::MAX / 4)),
            },
            state: ReuseLimit {
                max_total: self.instance_reuse,
            },
        })
    }
}

/// Drops an instance kept for reuse once it has been idle for [`IDLE_INSTANCE_TIMEOUT`].
pub(super) struct IdleExpiration {
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for IdleExpiration {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        if status != WorkerStatus::Idle {
            // No request timeout: the workload answers immediately.
            return Poll::Pending;
        }
        let me = self.get_mut();
        let deadline = tokio::time::Instant::from_std(start + IDLE_INSTANCE_TIMEOUT);
        if me.sleep.deadline() != deadline {
            me.sleep.as_mut().reset(deadline);
        }
        me.sleep.as_mut().poll(cx)
    }
}

/// Lets an instance answer `max_total` requests, one at a time (WASI 0.2 handlers are not
/// reentrant).
pub(super) struct ReuseLimit {
    max_total: usize,
}

impl WorkerState for ReuseLimit {
    type StoreData = HostData;
    type RequestData = ();

    fn should_accept_request(&self, concurrent_count: usize, total_count: usize) -> ShouldAccept {
        if total_count >= self.max_total {
            ShouldAccept::Never
        } else if concurrent_count >= 1 {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, HostData>,
        _data: (),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + 'static + Send + Sync>> {
        Box::pin(std::future::pending())
    }

    fn drop(&self, store: Store<HostData>, result: ::wasmtime::Result<()>) {
        if let Err(e) = result {
            eprintln!("wasi-http host: instance failed: {e:#}");
        }
        drop(store);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_answers_one_request_at_a_time_up_to_its_limit() {
        let reuse = ReuseLimit { max_total: 3 };
        let accept = |concurrent, total| reuse.should_accept_request(concurrent, total);
        assert!(matches!(accept(0, 0), ShouldAccept::Yes));
        assert!(matches!(accept(1, 1), ShouldAccept::No));
        assert!(matches!(accept(0, 2), ShouldAccept::Yes));
        assert!(matches!(accept(0, 3), ShouldAccept::Never));
        let single = ReuseLimit { max_total: 1 };
        assert!(matches!(
            single.should_accept_request(0, 1),
            ShouldAccept::Never
        ));
    }
}
