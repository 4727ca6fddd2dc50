//! The `caisse-ap-relay` binary: parses the command line and runs the chosen command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    caisse_ap_relay::cli::Cli::parse().run()
}

/// jemalloc instead of glibc's malloc: a payment allocates and frees many short-lived
/// buffers on two threads, which glibc serves with a fastbin consolidation on each large
/// request; jemalloc took agent CPU per payment down by 13-25 % on the bench (BENCHMARKS.md).
/// Windows (MSVC), where jemalloc does not build, keeps the system allocator.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
