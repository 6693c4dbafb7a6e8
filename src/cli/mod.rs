//! The subcommands of the `pgdblink` binary.

pub mod bench;
pub mod run;
pub mod shell;
pub mod table;
