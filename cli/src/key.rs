//! `registry key`: make and show Inferno key files, like `auth/createsignerkey`,
//! `auth/mkauthinfo` and `getpk` (spec/infpk1.md §3.6, §7.1).

use crate::CmdResult;
use registries::auth::keygen::{self, KeyAlg};
use registries::auth::{AuthInfo, PkAlg, pkhash};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

/// Make and show Inferno key files (authinfo files usable by Inferno's own tools).
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  registry key signer -f signer.key mysigner          # like auth/createsignerkey
  registry key issue -k signer.key alice > alice.key   # like auth/mkauthinfo
  registry key issue -k signer.key -e 31122030 bob bob.key
  registry key show alice.key signer.key")]
pub struct Args {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(clap::Subcommand)]
enum KeyCommand {
    /// Make a signer key with a self-signed certificate (like auth/createsignerkey).
    #[command(after_help = "\
Examples:
  registry key signer -f /keydb/signerkey mysigner
  registry key signer -a elgamal -b 512 -e 31122030 -f eg.signerkey egsigner")]
    Signer {
        /// Key algorithm.
        #[arg(short = 'a', default_value = "rsa", value_parser = ["rsa", "elgamal"])]
        alg: String,
        /// Modulus size in bits (32 to 4096).
        #[arg(short = 'b', default_value_t = 1024)]
        bits: u64,
        /// Expiry date DDMMYYYY (the key then lasts to the end of that day, UTC); default never.
        #[arg(short = 'e', value_name = "DDMMYYYY")]
        expiry: Option<String>,
        /// File to write (created with mode 0600).
        #[arg(short = 'f', value_name = "FILE")]
        file: PathBuf,
        /// Overwrite FILE if it exists (a signer key that is lost cannot be made again).
        #[arg(long)]
        force: bool,
        /// The signer's name.
        name: String,
    },
    /// Make a user key certified by a signer (like auth/mkauthinfo); writes to FILE (mode 0600) or
    /// standard output (made mode 0600 when it is a file).
    #[command(after_help = "\
Examples:
  registry key issue -k signer.key alice > alice.key
  registry key issue -k signer.key -e 01012030 carol carol.key")]
    Issue {
        /// The signer's key file.
        #[arg(short = 'k', value_name = "SIGNERFILE")]
        signer: PathBuf,
        /// Expiry date DDMMYYYY, or `permanent` (the default).
        #[arg(short = 'e', value_name = "DDMMYYYY|permanent")]
        expiry: Option<String>,
        /// The user the key is for.
        user: String,
        /// File to write instead of standard output.
        file: Option<PathBuf>,
    },
    /// Show key files: owner, algorithm, signer, signer pkhash and expiry (public facts only: never
    /// the secret key).
    #[command(after_help = "\
Example:
  registry key show ~/keyring/default /keydb/signerkey")]
    Show {
        /// Key files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Runs `registry key`.
pub async fn run(args: Args) -> CmdResult {
    match args.command {
        KeyCommand::Signer {
            alg,
            bits,
            expiry,
            file,
            force,
            name,
        } => {
            if file.exists() && !force {
                return Err(format!(
                    "{} exists: a signer key is not overwritten without --force",
                    file.display()
                )
                .into());
            }
            let exp = match expiry {
                Some(e) => keygen::signer_expiry(&e, now())?,
                None => 0,
            };
            let alg = if alg == "elgamal" {
                KeyAlg::ElGamal
            } else {
                KeyAlg::Rsa
            };
            let info =
                tokio::task::spawn_blocking(move || keygen::create_signer(&name, alg, bits, exp))
                    .await??;
            info.write(&file)?;
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Issue {
            signer,
            expiry,
            user,
            file,
        } => {
            let sai = AuthInfo::read(&signer)
                .map_err(|e| format!("can't read key file {}: {e}", signer.display()))?;
            let exp = match expiry {
                Some(e) => keygen::user_expiry(&e, now())?,
                None => 0,
            };
            let info =
                tokio::task::spawn_blocking(move || keygen::issue(&sai, &user, exp)).await??;
            match file {
                Some(f) => info.write(&f)?,
                None => {
                    make_stdout_private()?;
                    let mut out = std::io::stdout().lock();
                    out.write_all(&info.to_bytes())?;
                    out.flush()?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Show { files } => {
            let mut code = ExitCode::SUCCESS;
            let mut out = std::io::stdout().lock();
            for f in files {
                match AuthInfo::read(&f) {
                    Ok(info) => writeln!(out, "{}", describe(&f, &info))?,
                    Err(e) => {
                        eprintln!("registry: {}: {e}", f.display());
                        code = ExitCode::FAILURE;
                    }
                }
            }
            Ok(code)
        }
    }
}

/// When standard output is a regular file (`key issue ... > alice.key`), the shell created it
/// with its umask: make it readable by its owner only, as a key file written with FILE is, before
/// the secret goes in.
fn make_stdout_private() -> std::io::Result<()> {
    use std::os::fd::AsFd as _;
    use std::os::unix::fs::PermissionsExt as _;
    let out = std::fs::File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let meta = out.metadata()?;
    if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
        out.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        eprintln!("registry: standard output is a file: made it private (mode 0600)");
    }
    Ok(())
}

/// The `show` text for one key file.
fn describe(path: &std::path::Path, info: &AuthInfo) -> String {
    let bits = match &info.mypk.alg {
        PkAlg::Rsa { n, .. } => n.bits(),
        PkAlg::ElGamal { p, .. } => p.bits(),
    };
    let expires = if info.cert.exp == 0 {
        "never".to_string()
    } else {
        let e = u64::from(info.cert.exp);
        let past = if e <= now() { " (expired)" } else { "" };
        format!("{} ({e}){past}", utc(e))
    };
    format!(
        "{}:\n  owner          {}\n  algorithm      {} ({bits} bits)\n  signer         {}\n  \
         signer pkhash  {}\n  expires        {expires}\n  pkhash         {}",
        path.display(),
        info.mypk.owner,
        info.mypk.alg.name(),
        info.cert.signer,
        pkhash(&info.spk),
        pkhash(&info.mypk),
    )
}

/// `YYYY-MM-DD HH:MM:SS UTC` for seconds since 1970.
fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86400).unwrap_or(0);
    let rem = secs % 86400;
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(1893533606), "2030-01-01 21:33:26 UTC");
    }
}
