//! The subcommands of the `pgdblink` binary.

/// `print!` that ends the process quietly (status 1) when stdout is gone, e.g. piped into `head`,
/// where `print!` would panic. A throwaway cluster is still removed: its guardian sees us exit.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if write!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(1);
        }
    }};
}

/// `println!` that ends the process quietly when stdout is gone (see `out!`).
macro_rules! outln {
    () => { out!("\n") };
    ($($arg:tt)*) => {{
        out!($($arg)*);
        out!("\n");
    }};
}

pub mod bench;
pub mod interrupt;
pub mod run;
pub mod shell;
pub mod sqlscan;
pub mod table;
pub mod verbs;
