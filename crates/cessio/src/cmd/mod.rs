//! One module per command: its flags and what it runs.

pub mod close_year;
pub mod export;
pub mod import;
pub mod operator;
pub mod register_parties;
pub mod rent;
pub mod serve;
pub mod verify;
