//! The one walk over a keys file's top-level object, shared by the loader, the checker and the
//! editable document: `keys` read once (none, or a second, is an error), its records handed over
//! one by one as they are parsed, every other member left to the walker.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// What a walk does with the members of a keys file's top-level object.
pub(crate) trait Walker<'de> {
    /// What each record of `keys` is read as.
    type Record: Deserialize<'de>;

    /// What a `keys` that is not an array is said to have been expected to be.
    const KEYS_EXPECTED: &'static str = "an array of keys";

    /// Called before each record is read, and once more before the end of the array is.
    fn before_record(&mut self) {}

    /// The `index`th record of `keys`; an error stops the walk.
    fn record<E: de::Error>(&mut self, index: usize, record: Self::Record) -> Result<(), E>;

    /// A member other than `keys`, whose value is next in `map`: skipped, unless the walker
    /// keeps it.
    fn other<A: MapAccess<'de>>(
        &mut self,
        name: Cow<'de, str>,
        map: &mut A,
    ) -> Result<(), A::Error> {
        let _ = name;
        map.next_value::<IgnoredAny>().map(|_| ())
    }
}

/// The records' texts, kept as they are read.
impl<'de> Walker<'de> for Vec<&'de RawValue> {
    type Record = &'de RawValue;

    fn record<E: de::Error>(&mut self, _: usize, record: &'de RawValue) -> Result<(), E> {
        self.push(record);
        Ok(())
    }
}

/// Walks the keys file `text` to its end (nothing but whitespace may follow the object),
/// handing what it meets to `walker`.
pub(crate) fn walk<'de, W: Walker<'de>>(
    text: &'de str,
    walker: &mut W,
) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    de::Deserializer::deserialize_map(&mut deserializer, Top(walker))
        .and_then(|()| deserializer.end())
}

/// The top-level object.
struct Top<'w, W>(&'w mut W);

impl<'de, W: Walker<'de>> Visitor<'de> for Top<'_, W> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with a `keys` array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(field) = map.next_key::<Cow<'de, str>>()? {
            if field != "keys" {
                self.0.other(field, &mut map)?;
            } else if seen {
                return Err(de::Error::duplicate_field("keys"));
            } else {
                seen = true;
                map.next_value_seed(Records(&mut *self.0))?;
            }
        }
        match seen {
            true => Ok(()),
            false => Err(de::Error::missing_field("keys")),
        }
    }
}

/// The `keys` array, streamed: each record is handed over as soon as it is parsed.
struct Records<'w, W>(&'w mut W);

impl<'de, W: Walker<'de>> DeserializeSeed<'de> for Records<'_, W> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, W: Walker<'de>> Visitor<'de> for Records<'_, W> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(W::KEYS_EXPECTED)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(record) = {
            self.0.before_record();
            seq.next_element::<W::Record>()?
        } {
            self.0.record(index, record)?;
            index += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Document, Error, KeySet};

    #[test]
    fn each_reader_words_a_keys_that_is_not_an_array_as_it_always_has() {
        let json = |message: &str| Error::Json {
            line: 1,
            column: 10,
            message: message.into(),
        };
        let text = br#"{"keys": 5}"#;
        assert_eq!(
            KeySet::from_json(text).err(),
            Some(json("invalid type: integer `5`, expected an array of keys"))
        );
        assert_eq!(
            KeySet::check(text).errors[0].error,
            json("invalid type: integer `5`, expected an array of keys")
        );
        assert_eq!(
            Document::parse(text).err(),
            Some(json("invalid type: integer `5`, expected a sequence"))
        );
    }
}
