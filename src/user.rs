//! `mizumori user add|list`, where the dashboard's accounts live, and the demo's users.
//!
//! Accounts live in a SQLite file: the embedded store's own file when the store is
//! `sqlite://PATH`, or the file named by `--accounts` (needed when readings live in InfluxDB).

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Args, Subcommand};
use store::accounts::User;
use store::{AccountStore, Role, SqliteAccounts, StoreUrl, UserName};

/// Passwords shorter than this are refused (NIST SP 800-63B's minimum for user-chosen ones).
const MIN_PASSWORD_CHARS: usize = 8;

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

/// Where the accounts are: `--accounts FILE`, or the file of a `sqlite://` store.
#[derive(Debug, Args)]
pub struct AccountsArgs {
    /// The store whose SQLite file holds the accounts (sqlite://PATH).
    #[arg(long, env = "MIZUMORI_STORE")]
    pub store: Option<String>,
    /// A SQLite file for the accounts, when the store is not SQLite (or to keep them apart).
    #[arg(long, env = "MIZUMORI_ACCOUNTS")]
    pub accounts: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password comes from a prompt, or from the first line of standard input
    /// when that is not a terminal.
    Add {
        name: String,
        /// viewer, crew, engineer, planner or admin
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Replace an existing user's role and password (their sessions end).
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        at: AccountsArgs,
    },
    /// List the users and their roles.
    List {
        #[command(flatten)]
        at: AccountsArgs,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse::<Role>().map_err(|e| e.to_string())
}

/// The SQLite file that holds the accounts.
pub fn accounts_path(store: Option<&str>, accounts: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = accounts {
        return Ok(path.to_owned());
    }
    match store.map(str::parse::<StoreUrl>).transpose()? {
        Some(StoreUrl::Sqlite { path }) => Ok(path),
        Some(StoreUrl::Influx { .. }) => {
            bail!("readings are in InfluxDB: name a SQLite file for the accounts with --accounts FILE")
        }
        None => {
            bail!("name the store (--store sqlite://PATH) or the accounts file (--accounts FILE)")
        }
    }
}

/// Opens the accounts, saying where.
pub async fn open(path: &Path) -> anyhow::Result<Arc<SqliteAccounts>> {
    Ok(Arc::new(
        SqliteAccounts::open(path).await.with_context(|| format!("opening the accounts in {}", path.display()))?,
    ))
}

fn read_password(name: &UserName) -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {name}: ")).context("reading the password")?;
        let again = rpassword::prompt_password("Again: ").context("reading the password")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if password.chars().count() < MIN_PASSWORD_CHARS {
        bail!("the password must have at least {MIN_PASSWORD_CHARS} characters");
    }
    Ok(password)
}

async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || dashboard::auth::hash_password(&password))
        .await
        .context("hashing task")?
        .map_err(|e| anyhow::anyhow!("{e}"))
}

pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    match args.command {
        UserCommand::Add { name, role, replace, at } => {
            let name = UserName::new(name)?;
            let path = accounts_path(at.store.as_deref(), at.accounts.as_deref())?;
            let accounts = open(&path).await?;
            if !replace && accounts.user(&name).await?.is_some() {
                bail!("user {name} exists; add --replace to change their role and password");
            }
            let password = read_password(&name)?;
            let user = User { name: name.clone(), role, password_hash: hash(password).await?, created: Utc::now() };
            if replace {
                accounts.put_user(&user).await?;
            } else if !accounts.add_user(&user).await? {
                bail!("user {name} was added meanwhile; add --replace to change it");
            }
            println!("{name} ({role}) saved in {}", path.display());
            Ok(())
        }
        UserCommand::List { at } => {
            let path = accounts_path(at.store.as_deref(), at.accounts.as_deref())?;
            let accounts = open(&path).await?;
            for u in accounts.users().await? {
                println!("{}\t{}", u.name, u.role);
            }
            Ok(())
        }
    }
}

/// Makes (or resets) one user per role, named after the role, all with `password` (a random
/// one when `None`); returns the password.
pub async fn demo_users(accounts: &SqliteAccounts, password: Option<String>) -> anyhow::Result<String> {
    let password = match password {
        Some(p) if p.chars().count() < MIN_PASSWORD_CHARS => {
            bail!("--demo-password must have at least {MIN_PASSWORD_CHARS} characters")
        }
        Some(p) => p,
        None => dashboard::auth::random_password().map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    for role in Role::ALL {
        let user = User {
            name: UserName::new(role.as_str())?,
            role,
            password_hash: hash(password.clone()).await?,
            created: Utc::now(),
        };
        accounts.put_user(&user).await?;
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_live_with_a_sqlite_store_or_where_told() {
        assert_eq!(accounts_path(Some("sqlite://d/m.sqlite"), None).unwrap(), PathBuf::from("d/m.sqlite"));
        assert_eq!(
            accounts_path(Some("influx://127.0.0.1:8086/water"), Some(Path::new("a.sqlite"))).unwrap(),
            PathBuf::from("a.sqlite")
        );
        let e = accounts_path(Some("influx://127.0.0.1:8086/water"), None).unwrap_err();
        assert!(e.to_string().contains("--accounts"), "{e}");
        assert!(accounts_path(None, None).is_err());
    }
}
