//! `restb completions`: shell completion scripts.

use super::args::Cli;
use super::stdout::print_out;
use super::{Exit, UsageError};
use clap::{Args, CommandFactory, ValueEnum};
use clap_complete::Shell;

/// The shells we write completions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// bash: `restb completions bash > /etc/bash_completion.d/restb`
    Bash,
    /// zsh: `restb completions zsh > "${fpath[1]}/_restb"`
    Zsh,
    /// fish: `restb completions fish > ~/.config/fish/completions/restb.fish`
    Fish,
}

/// `restb completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

pub(super) fn completions(args: &CompletionsArgs) -> Result<Exit, UsageError> {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "restb", &mut script);
    print_out(&String::from_utf8_lossy(&script))?;
    Ok(Exit::Success)
}
