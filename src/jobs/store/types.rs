//! How the job store's own enums are kept in the database: as their text
//! names (`published`, `masterMismatch`, `upload`), in a TEXT column, on any
//! backend whose `String` is text. A name the code does not know fails the
//! row's decoding instead of reading as some other value.

use crate::jobs::model::Source;
use crate::jobs::State;
use crate::reason::ReasonCode;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

macro_rules! text_column {
    ($ty:ty, $parse:expr) => {
        impl<DB: Database> Type<DB> for $ty
        where
            String: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $ty
        where
            String: Decode<'r, DB>,
        {
            fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let s = <String as Decode<'r, DB>>::decode(value)?;
                let parse: fn(&str) -> Result<$ty, String> = $parse;
                Ok(parse(&s)?)
            }
        }

        impl<'q, DB: Database> Encode<'q, DB> for $ty
        where
            String: Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as Database>::ArgumentBuffer,
            ) -> Result<IsNull, BoxDynError> {
                <String as Encode<'q, DB>>::encode(self.as_str().to_string(), buf)
            }
        }
    };
}

text_column!(State, |s| s.parse::<State>());
text_column!(ReasonCode, |s| s
    .parse::<ReasonCode>()
    .map_err(|e| e.to_string()));
text_column!(Source, |s| match s {
    "generated" => Ok(Source::Generated),
    "upload" => Ok(Source::Upload),
    other => Err(format!("unknown asset source {other:?}")),
});

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unknown_state_name_fails_decoding_instead_of_reading_as_another_state() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let (ok,): (State,) = sqlx::query_as("SELECT 'checking'")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(ok, State::Checking);
        let bad = sqlx::query_as::<_, (State,)>("SELECT 'chekcing'")
            .fetch_one(&pool)
            .await;
        assert!(
            matches!(bad, Err(sqlx::Error::ColumnDecode { .. })),
            "{bad:?}"
        );
    }
}
