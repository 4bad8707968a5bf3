//! NodeBidder: follows what the network's [driver](crate::driver) tells, feeds it to the
//! [`core`](crate::core) and performs the core's bidding actions (sign and send a bid, record a
//! skip or a bid's outcome). Won requests go to the [`prover`](crate::prover).
//!
//! Layout:
//! - [`run`]: the loop on the driver's events, and the bid sender.

pub mod run;
