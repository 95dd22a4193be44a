//! The two backends write their DDL by hand, one migration list each. After every
//! migration, a fresh SQLite database and a fresh PostgreSQL schema, migrated to the same
//! step, must hold the same tables, the same columns in the same order with the same types
//! (once normalised) and nullability, the same primary keys, the same unique constraints
//! and the same named indexes. The differences that are right are listed once, in
//! [`KNOWN`], each with its reason. `CESSIO_TEST_DATABASE_URL` names the server; without it
//! the PostgreSQL half, and so the comparison, is skipped (said on standard error).

#![expect(clippy::unwrap_used, reason = "tests")]

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::Connection;

/// A difference between the two schemas that is right, and why.
#[derive(Debug)]
enum Known {
    /// Every column of this PostgreSQL type is stored as this SQLite type.
    Type {
        postgres: &'static str,
        sqlite: &'static str,
        why: &'static str,
    },
    /// This column may hold NULL in SQLite only.
    NullableInSqlite {
        table: &'static str,
        column: &'static str,
        why: &'static str,
    },
}

impl Known {
    fn describe(&self) -> String {
        match self {
            Known::Type {
                postgres,
                sqlite,
                why,
            } => format!("{postgres} in PostgreSQL is {sqlite} in SQLite: {why}"),
            Known::NullableInSqlite { table, column, why } => {
                format!("{table}.{column} may be NULL in SQLite only: {why}")
            }
        }
    }
}

const KNOWN: &[Known] = &[
    Known::Type {
        postgres: "bool",
        sqlite: "int",
        why: "SQLite has no boolean type: its backend writes and reads booleans as INTEGER 0 and 1",
    },
    Known::Type {
        postgres: "date",
        sqlite: "text",
        why: "SQLite has no date type: its backend writes and reads dates as TEXT YYYY-MM-DD",
    },
    Known::NullableInSqlite {
        table: "login_flows",
        column: "key_hash",
        why: "SQLite lets a primary key that is not an INTEGER hold NULL unless declared NOT NULL; \
              the store always writes a SHA-256 there, and rebuilding the table to add the \
              constraint buys nothing",
    },
    Known::NullableInSqlite {
        table: "login_attempts",
        column: "key",
        why: "as login_flows.key_hash: the store always writes the throttle's key there",
    },
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    name: String,
    /// Normalised: `int`, `text`, `bytes`, `bool`, `date`, `float`, or the raw type.
    ty: String,
    nullable: bool,
}

/// A named index made by `CREATE INDEX`, not by a constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Index {
    table: String,
    columns: Vec<String>,
    unique: bool,
    partial: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    columns: Vec<Column>,
    primary_key: Vec<String>,
    /// The column lists of the table's UNIQUE constraints.
    unique: BTreeSet<Vec<String>>,
}

#[derive(Debug, Default)]
struct Schema {
    tables: BTreeMap<String, Table>,
    indexes: BTreeMap<String, Index>,
}

fn sqlite_type(declared: &str) -> String {
    match declared.to_ascii_uppercase().as_str() {
        "INTEGER" | "BIGINT" => "int".into(),
        "TEXT" => "text".into(),
        "BLOB" => "bytes".into(),
        "REAL" => "float".into(),
        other => format!("sqlite {other}"),
    }
}

fn postgres_type(data_type: &str) -> String {
    match data_type {
        "bigint" | "integer" | "smallint" => "int".into(),
        "text" | "character varying" => "text".into(),
        "bytea" => "bytes".into(),
        "double precision" | "real" => "float".into(),
        "boolean" => "bool".into(),
        "date" => "date".into(),
        other => format!("postgres {other}"),
    }
}

fn sqlite_schema(db: &Connection) -> Schema {
    let mut schema = Schema::default();
    let mut names = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap();
    let names: Vec<String> = names
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for name in names {
        let mut table = Table::default();
        let mut key = Vec::new();
        let mut columns = db
            .prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid")
            .unwrap();
        let rows = columns
            .query_map([&name], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .unwrap();
        for row in rows {
            let (column, declared, not_null, pk) = row.unwrap();
            // An INTEGER PRIMARY KEY is the rowid: never NULL, whatever it declares.
            let rowid = pk > 0 && declared.eq_ignore_ascii_case("INTEGER");
            table.columns.push(Column {
                name: column.clone(),
                ty: sqlite_type(&declared),
                nullable: !(not_null || rowid),
            });
            if pk > 0 {
                key.push((pk, column));
            }
        }
        key.sort();
        table.primary_key = key.into_iter().map(|(_, c)| c).collect();
        let mut list = db
            .prepare("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)")
            .unwrap();
        let indexes: Vec<(String, bool, String, bool)> = list
            .query_map([&name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (index, unique, origin, partial) in indexes {
            let mut info = db
                .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                .unwrap();
            let columns: Vec<String> = info
                .query_map([&index], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            match origin.as_str() {
                "pk" => {}
                "u" => {
                    table.unique.insert(columns);
                }
                _ => {
                    schema.indexes.insert(
                        index,
                        Index {
                            table: name.clone(),
                            columns,
                            unique,
                            partial,
                        },
                    );
                }
            }
        }
        schema.tables.insert(name, table);
    }
    schema
}

async fn postgres_schema(pg: &tokio_postgres::Client, namespace: &str) -> Schema {
    let mut schema = Schema::default();
    for row in pg
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'YES'
               FROM information_schema.columns
              WHERE table_schema = $1
              ORDER BY table_name, ordinal_position",
            &[&namespace],
        )
        .await
        .unwrap()
    {
        let table: String = row.get(0);
        schema
            .tables
            .entry(table)
            .or_default()
            .columns
            .push(Column {
                name: row.get(1),
                ty: postgres_type(row.get(2)),
                nullable: row.get(3),
            });
    }
    // Every index of the schema with its columns in order, and the constraint it backs
    // ('p' primary key, 'u' unique), if any.
    for row in pg
        .query(
            "SELECT t.relname::text, i.relname::text, x.indisunique, x.indpred IS NOT NULL,
                    ARRAY(SELECT a.attname::text
                            FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                           ORDER BY k.n),
                    (SELECT c.contype::text FROM pg_constraint c
                      WHERE c.conindid = x.indexrelid AND c.conrelid = t.oid
                        AND c.contype IN ('p', 'u'))
               FROM pg_index x
               JOIN pg_class i ON i.oid = x.indexrelid
               JOIN pg_class t ON t.oid = x.indrelid
               JOIN pg_namespace n ON n.oid = t.relnamespace
              WHERE n.nspname = $1",
            &[&namespace],
        )
        .await
        .unwrap()
    {
        let (table, index): (String, String) = (row.get(0), row.get(1));
        let columns: Vec<String> = row.get(4);
        let constraint: Option<String> = row.get(5);
        let entry = schema.tables.entry(table.clone()).or_default();
        match constraint.as_deref() {
            Some("p") => entry.primary_key = columns,
            Some(_) => {
                entry.unique.insert(columns);
            }
            None => {
                schema.indexes.insert(
                    index,
                    Index {
                        table,
                        columns,
                        unique: row.get(2),
                        partial: row.get(3),
                    },
                );
            }
        }
    }
    schema
}

/// Whether an entry of [`KNOWN`] explains a difference; marks it in `used` if so.
fn explained(used: &mut [bool], explains: impl Fn(&Known) -> bool) -> bool {
    let found = KNOWN.iter().position(explains);
    if let Some(i) = found {
        used[i] = true;
    }
    found.is_some()
}

/// What differs between the names the two sides hold, if anything.
fn differing_names<V>(
    what: &str,
    sqlite: &BTreeMap<String, V>,
    postgres: &BTreeMap<String, V>,
) -> Option<String> {
    let names = |m: &BTreeMap<String, V>| m.keys().cloned().collect::<Vec<_>>();
    (names(sqlite) != names(postgres)).then(|| {
        format!(
            "{what}: SQLite has {:?}, PostgreSQL {:?}",
            names(sqlite),
            names(postgres)
        )
    })
}

/// The first difference between the two schemas that [`KNOWN`] does not explain, marking
/// in `used` the entries that explained one.
fn first_difference(sqlite: &Schema, postgres: &Schema, used: &mut [bool]) -> Option<String> {
    if let Some(difference) = differing_names("tables", &sqlite.tables, &postgres.tables) {
        return Some(difference);
    }
    for (name, lite) in &sqlite.tables {
        let pg = &postgres.tables[name];
        let columns = |t: &Table| t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        if columns(lite) != columns(pg) {
            return Some(format!(
                "{name}: the columns in order are {:?} in SQLite, {:?} in PostgreSQL",
                columns(lite),
                columns(pg)
            ));
        }
        for (l, p) in lite.columns.iter().zip(&pg.columns) {
            let column = &l.name;
            let same_values = |k: &Known| matches!(k, Known::Type { postgres, sqlite, .. } if *postgres == p.ty && *sqlite == l.ty);
            if l.ty != p.ty && !explained(used, same_values) {
                return Some(format!(
                    "{name}.{column}: type {} in SQLite, {} in PostgreSQL",
                    l.ty, p.ty
                ));
            }
            let sqlite_only = |k: &Known| {
                matches!(k, Known::NullableInSqlite { table, column: c, .. }
                    if table == name && c == column && l.nullable)
            };
            if l.nullable != p.nullable && !explained(used, sqlite_only) {
                let says = |nullable: bool| if nullable { "NULL" } else { "NOT NULL" };
                return Some(format!(
                    "{name}.{column}: {} in SQLite, {} in PostgreSQL",
                    says(l.nullable),
                    says(p.nullable)
                ));
            }
        }
        if lite.primary_key != pg.primary_key {
            return Some(format!(
                "{name}: primary key {:?} in SQLite, {:?} in PostgreSQL",
                lite.primary_key, pg.primary_key
            ));
        }
        if lite.unique != pg.unique {
            return Some(format!(
                "{name}: UNIQUE constraints {:?} in SQLite, {:?} in PostgreSQL",
                lite.unique, pg.unique
            ));
        }
    }
    if let Some(difference) = differing_names("named indexes", &sqlite.indexes, &postgres.indexes) {
        return Some(difference);
    }
    for (name, lite) in &sqlite.indexes {
        let pg = &postgres.indexes[name];
        if lite != pg {
            return Some(format!(
                "index {name}: {lite:?} in SQLite, {pg:?} in PostgreSQL"
            ));
        }
    }
    None
}

#[tokio::test]
async fn sqlite_and_postgres_schemas_match_after_every_migration() {
    assert_eq!(
        cessio_store_sqlite::MIGRATIONS.len(),
        cessio_store_postgres::MIGRATIONS.len(),
        "both backends have the same number of migrations"
    );
    let Some(url) = cessio_test_support::postgres_url() else {
        return;
    };
    let namespace = format!(
        "schema_match_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let (pg, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    pg.batch_execute(&format!(
        "CREATE SCHEMA {namespace}; SET search_path = {namespace}"
    ))
    .await
    .unwrap();
    let lite = Connection::open_in_memory().unwrap();

    let mut used = vec![false; KNOWN.len()];
    let mut found = None;
    let steps = cessio_store_sqlite::MIGRATIONS
        .iter()
        .zip(cessio_store_postgres::MIGRATIONS);
    for (n, (sqlite_sql, postgres_sql)) in (1..).zip(steps) {
        lite.execute_batch(sqlite_sql).unwrap();
        pg.batch_execute(postgres_sql).await.unwrap();
        let sqlite = sqlite_schema(&lite);
        let postgres = postgres_schema(&pg, &namespace).await;
        if let Some(difference) = first_difference(&sqlite, &postgres, &mut used) {
            found = Some(format!("after migration {n}: {difference}"));
            break;
        }
    }
    pg.batch_execute(&format!("DROP SCHEMA {namespace} CASCADE"))
        .await
        .unwrap();

    if let Some(difference) = found {
        panic!("the two schemas differ {difference}");
    }
    let stale: Vec<String> = KNOWN
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(k, _)| k.describe())
        .collect();
    assert!(
        stale.is_empty(),
        "known differences that no longer occur, to remove from KNOWN: {stale:#?}"
    );
}
