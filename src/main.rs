//! The `pgdblink` command line: `bench`, `run` and `shell`.

fn main() {
    eprintln!("pgdblink: the command line is not built yet (see the open issues)");
    std::process::exit(2);
}
