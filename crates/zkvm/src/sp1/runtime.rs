//! A private tokio runtime on which the blocking [`ZkVm`](crate::ZkVm) methods run sp1-sdk's
//! futures.
//!
//! sp1-sdk 6 is async only, and the trait is blocking (callers already sit on a blocking thread,
//! e.g. [`prove_async`](crate::prove_async)'s `spawn_blocking`). A **current-thread** runtime is
//! enough: the heavy work runs on SP1's own rayon and blocking pools, the runtime only drives the
//! prover's coordinating tasks while a call is in [`SdkRuntime::run`], and it adds no idle worker
//! threads to a process that may never prove. Each call blocks the calling thread; concurrent
//! callers take turns driving the runtime. A caller inside another runtime (where `block_on`
//! would panic) is served from a short-lived scoped thread instead.
//!
//! Panics inside SP1 (its executor asserts on some guest misbehaviour, e.g. reading a hint that
//! is not there) come back as `Err(message)`, so one bad request cannot take the process down.

use std::{
    any::Any,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::OnceLock,
};

use tokio::runtime::{Builder, Handle, Runtime};

use crate::{Result, ZkVmError};

/// The runtime, created on first use.
#[derive(Default)]
pub(crate) struct SdkRuntime {
    runtime: OnceLock<std::result::Result<Runtime, String>>,
}

impl SdkRuntime {
    /// Runs `future` to completion and returns its output, or the message of a panic inside it.
    ///
    /// # Errors
    /// [`ZkVmError::ProverFailed`] if the runtime cannot be created (no file descriptors left).
    pub(crate) fn run<F>(&self, future: F) -> Result<std::result::Result<F::Output, String>>
    where
        F: Future + Send,
        F::Output: Send,
    {
        let runtime = self
            .runtime
            .get_or_init(|| {
                Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| ZkVmError::ProverFailed {
                reason: format!("tokio runtime for SP1: {e}"),
            })?;
        let drive = || catch_unwind(AssertUnwindSafe(|| runtime.block_on(future)));
        let outcome = if Handle::try_current().is_ok() {
            std::thread::scope(|scope| scope.spawn(drive).join()).unwrap_or_else(Err)
        } else {
            drive()
        };
        Ok(outcome.map_err(panic_message))
    }
}

impl Drop for SdkRuntime {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks stop, which panics inside another runtime
        // (the registry may be dropped in async code); shutting down in the background does not.
        if let Some(Ok(runtime)) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
