//! Tests of the built `provernet` binary, run as a separate process.

mod bench;
mod calibrate;
mod e2e;
mod local;
mod observability;
mod pool;
mod procs;
mod requester;
mod standby;
mod status;
mod storage_denied;
