//! `restb completions`: shell completion scripts.

use super::args::Cli;
use super::Exit;
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

pub(super) fn completions(args: &CompletionsArgs) -> Exit {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut Cli::command(), "restb", &mut std::io::stdout());
    Exit::Success
}
