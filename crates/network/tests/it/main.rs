//! The ProverNetwork end to end over real gRPC on loopback: every test launches the network
//! ([`provernet_network::launch`]) on `127.0.0.1:0` with its SQLite file and artifacts in a temp
//! dir, talks to it through the generated client and the artifact client, waits on the event
//! subscription (never on sleeps), and checks the ledger when it stops the network.
//!
//! Layout:
//! - `harness`: [`harness::Net`], actors, uploads, signing, events, the ledger check;
//! - `happy`: a request's whole life, from faucet to a downloaded, verified proof;
//! - `scenarios`: auctions, rejected proofs, failures, cancellation, unexecutable requests,
//!   private inputs, and all of them at once on one network;
//! - `deadline`: the sweeper, and suspension after repeated misses;
//! - `restart`: stopping the network mid-auction and relaunching it on the same data;
//! - `subscriptions`: what each subscription filter delivers;
//! - `bad_input`: refused calls leave the state exactly as it was;
//! - `faults`: failures of what the network depends on (storage), survived;
//! - `standby` (PostgreSQL, `#[ignore]`d): a standby follows, serves reads, and takes over;
//! - `hostile`: who is calling is checked before any work that grows with the input;
//! - `sp1` (feature `sp1`): SP1 requests executed and a committed proof verified;
//! - `succinct`: the Succinct-API facade, as SP1's SDK and Succinct-protocol nodes call it.

// Helpers too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod deadline;
mod faults;
mod happy;
mod harness;
mod history;
mod hostile;
mod restart;
mod scenarios;
mod sp1;
mod standby;
mod subscriptions;
mod succinct;
mod tls;
