//! The two databases behind `Store`: one pool type per backend, one
//! transaction type, and the macros that write a query once for both.
//!
//! `on_pool!(self.pool, pool => body)` and `on_tx!(tx, conn => body)`
//! expand `body` once per backend, so each query's SQL and Rust are written
//! once and type-checked against SQLite and Postgres alike; inside the body
//! `Db` names the backend's `sqlx::Database` (for `QueryBuilder<Db>`).
//! Queries use `$1, $2, …` placeholders, which Postgres takes natively and
//! sqlx-sqlite binds by their number, and SQL both accept (`ON CONFLICT`,
//! `COALESCE`, `CASE` rather than SQLite's two-argument `MIN`).

use super::Result;
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool};

/// The store's connection pool, on one backend or the other.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A write transaction on the store's backend. On SQLite it holds the write
/// lock from its start (`BEGIN IMMEDIATE`); on Postgres the rows it reads
/// to change are locked with [`Tx::for_update`].
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    /// What to end a `SELECT` with whose rows this transaction is about to
    /// change: `FOR UPDATE` on Postgres (SQLite's transaction already holds
    /// the database's write lock, and has no such clause).
    pub(crate) fn for_update(&self) -> &'static str {
        match self {
            Tx::Sqlite(_) => "",
            Tx::Postgres(_) => " FOR UPDATE",
        }
    }
}

/// `on_pool!(pool_enum, p => body)`: `body` once per backend, with `p` the
/// backend's pool and `Db` its `sqlx::Database`.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match &$pool {
            $crate::jobs::store::backend::Pool::Sqlite($p) => {
                #[allow(dead_code)]
                type Db = ::sqlx::Sqlite;
                $body
            }
            $crate::jobs::store::backend::Pool::Postgres($p) => {
                #[allow(dead_code)]
                type Db = ::sqlx::Postgres;
                $body
            }
        }
    };
}

/// `on_tx!(tx, c => body)` (`tx: &mut Tx`): `body` once per backend, with
/// `c` the transaction's connection (`&mut SqliteConnection` or
/// `&mut PgConnection`) and `Db` its `sqlx::Database`.
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::jobs::store::backend::Tx::Sqlite(t) => {
                #[allow(dead_code)]
                type Db = ::sqlx::Sqlite;
                let $c: &mut ::sqlx::SqliteConnection = &mut *t;
                $body
            }
            $crate::jobs::store::backend::Tx::Postgres(t) => {
                #[allow(dead_code)]
                type Db = ::sqlx::Postgres;
                let $c: &mut ::sqlx::PgConnection = &mut *t;
                $body
            }
        }
    };
}

pub(crate) use {on_pool, on_tx};

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn sqlite_binds_numbered_placeholders_by_their_number_not_their_order() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        // `$2` first in the text, used twice: still the second bind.
        let row: (i64, String, i64) = sqlx::query_as("SELECT $2, $1, $2 + 1")
            .bind("one")
            .bind(2_i64)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(row, (2, "one".to_string(), 3));
    }

    #[tokio::test]
    async fn one_body_runs_on_each_backend() {
        let pool = super::Pool::Sqlite(sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap());
        let got: i64 = on_pool!(pool, p => {
            let mut q: sqlx::QueryBuilder<Db> = sqlx::QueryBuilder::new("SELECT ");
            q.push_bind(41_i64).push(" + 1");
            let (n,): (i64,) = q.build_query_as().fetch_one(p).await.unwrap();
            n
        });
        assert_eq!(got, 42);
    }
}
