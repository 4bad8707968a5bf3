//! Refused calls leave the stored state exactly as it was.
