//! Tests of the built `provernet` binary, run as a separate process.

mod calibrate;
mod local;
mod requester;
mod status;
