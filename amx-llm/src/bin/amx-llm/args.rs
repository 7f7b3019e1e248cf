//! Command-line parsing (plain std): a command, a model path, `--flag value` options.

use std::collections::HashMap;

/// The usage text.
pub const USAGE: &str = "usage:
  amx-llm generate MODEL --prompt TEXT [--prompt-ids IDS] [--tokens N] [--threads T] [--gpu-layers L] [--path auto|amx|vnni|scalar] [--json]
  amx-llm tokenize MODEL --prompt TEXT [--file F] [--json]
  amx-llm perplexity MODEL --file TEXT [--ids JSON] [--ctx C] [--chunks N] [--threads T] [--gpu-layers L] [--path P] [--json]
  amx-llm bench MODEL [--prefill P] [--decode D] [--repeat R] [--threads T] [--gpu-layers L] [--path P] [--json]";

/// A parsed command line.
#[derive(Debug)]
pub struct Args {
    /// The command.
    pub command: String,
    /// The model file.
    pub model: String,
    values: HashMap<String, String>,
    /// Whether `--json` was given.
    pub json: bool,
}

const VALUED: [&str; 13] = [
    "prompt",
    "prompt-ids",
    "tokens",
    "threads",
    "gpu-layers",
    "path",
    "file",
    "ids",
    "ctx",
    "chunks",
    "prefill",
    "decode",
    "repeat",
];

impl Args {
    /// Parses `args` (without the program name).
    pub fn parse(args: &[String]) -> Result<Args, String> {
        let mut it = args.iter();
        let command = it.next().ok_or("no command")?.clone();
        if !["generate", "tokenize", "perplexity", "bench"].contains(&command.as_str()) {
            return Err(format!("unknown command {command:?}"));
        }
        let mut model = None;
        let mut values = HashMap::new();
        let mut json = false;
        while let Some(a) = it.next() {
            if a == "--json" {
                json = true;
            } else if let Some(flag) = a.strip_prefix("--") {
                if !VALUED.contains(&flag) {
                    return Err(format!("unknown option --{flag}"));
                }
                let v = it.next().ok_or_else(|| format!("--{flag} needs a value"))?;
                values.insert(flag.to_owned(), v.clone());
            } else if model.is_none() {
                model = Some(a.clone());
            } else {
                return Err(format!("unexpected argument {a:?}"));
            }
        }
        let model = model.ok_or("no MODEL given")?;
        Ok(Args { command, model, values, json })
    }

    /// The value of `--flag`.
    pub fn get(&self, flag: &str) -> Option<&str> {
        self.values.get(flag).map(String::as_str)
    }

    /// `--flag` as a number, or `default`.
    pub fn num(&self, flag: &str, default: usize) -> Result<usize, String> {
        match self.get(flag) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{flag} {v:?} is not a number")),
        }
    }
}
