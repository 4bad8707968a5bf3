//! NodeBidder: the driver that follows the network's request stream, feeds what it hears to the
//! [`core`](crate::core) and performs the core's bidding actions (sign and send a bid, record a
//! skip or a bid's outcome). Won requests go to the [`prover`](crate::prover).
//!
//! Layout:
//! - [`run`]: the loop on the request stream, resync after a gap, and the bid sender.

pub mod run;
