//! Stopping the network mid-auction and relaunching it on the same data.
