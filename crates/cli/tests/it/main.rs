//! Tests of the built `provernet` binary, run as a separate process.

mod local;
mod requester;
