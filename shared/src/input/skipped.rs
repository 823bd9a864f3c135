//! Whether a typed read skipped a field: [`Flagged`] reads a value as its type does and notes
//! whether the type ignored anything on the way (a field it does not define, at any depth).
//!
//! This is the cheap question in front of the dear one: naming every ignored field with its
//! path (`serde_ignored`) captures every map key as a `String`, while a clean object, the usual
//! case, has nothing to name. The wrapper here builds no path and allocates nothing; it sees what
//! `serde_ignored` sees (it wraps the same places: values, elements, options, newtypes and
//! variants, but not keys), so it flags exactly the reads where `serde_ignored` reports.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, Visitor};

/// A value, and whether reading it ignored a field.
#[derive(Debug)]
pub struct Flagged<T> {
    pub value: T,
    /// Something was skipped: a field the type does not define.
    pub skipped: bool,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Flagged<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let skipped = Cell::new(false);
        let value = T::deserialize(Watch {
            inner: d,
            skipped: &skipped,
        })?;
        Ok(Flagged {
            value,
            skipped: skipped.get(),
        })
    }
}

/// Wraps a deserializer, visitor, access or seed, passing everything through; only
/// `deserialize_ignored_any` is noted.
struct Watch<'f, X> {
    inner: X,
    skipped: &'f Cell<bool>,
}

impl<'f, X> Watch<'f, X> {
    fn wrap<Y>(&self, inner: Y) -> Watch<'f, Y> {
        Watch {
            inner,
            skipped: self.skipped,
        }
    }
}

/// Deserializer methods passed on with the visitor wrapped.
macro_rules! deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            let visitor = self.wrap(visitor);
            self.inner.$method($($arg,)* visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Watch<'_, D> {
    type Error = D::Error;

    deserialize! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.skipped.set(true);
        self.inner.deserialize_ignored_any(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// Visitor methods for plain values, passed on as they are.
macro_rules! visit {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<E: de::Error>(self, $($arg: $ty),*) -> Result<V::Value, E> {
            self.inner.$method($($arg),*)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Watch<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    visit! {
        visit_bool(v: bool);
        visit_i8(v: i8);
        visit_i16(v: i16);
        visit_i32(v: i32);
        visit_i64(v: i64);
        visit_i128(v: i128);
        visit_u8(v: u8);
        visit_u16(v: u16);
        visit_u32(v: u32);
        visit_u64(v: u64);
        visit_u128(v: u128);
        visit_f32(v: f32);
        visit_f64(v: f64);
        visit_char(v: char);
        visit_str(v: &str);
        visit_borrowed_str(v: &'de str);
        visit_string(v: String);
        visit_bytes(v: &[u8]);
        visit_borrowed_bytes(v: &'de [u8]);
        visit_byte_buf(v: Vec<u8>);
        visit_none();
        visit_unit();
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        let d = self.wrap(d);
        self.inner.visit_some(d)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        let d = self.wrap(d);
        self.inner.visit_newtype_struct(d)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let seq = self.wrap(seq);
        self.inner.visit_seq(seq)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let map = self.wrap(map);
        self.inner.visit_map(map)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        let data = self.wrap(data);
        self.inner.visit_enum(data)
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Watch<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        let d = self.wrap(d);
        self.inner.deserialize(d)
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Watch<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_element_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Watch<'_, A> {
    type Error = A::Error;

    /// Keys are names, not fields: nothing is skipped in them.
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'f, 'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Watch<'f, A> {
    type Error = A::Error;
    type Variant = Watch<'f, A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let skipped = self.skipped;
        let (value, inner) = self.inner.variant_seed(seed)?;
        Ok((value, Watch { inner, skipped }))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Watch<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.newtype_variant_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.tuple_variant(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.struct_variant(fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Outer {
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        list: Vec<Inner>,
        #[serde(default)]
        map: BTreeMap<String, Inner>,
        #[serde(default)]
        choice: Option<Choice>,
        #[serde(default)]
        wrapped: Option<Wrapped>,
        #[serde(default)]
        free: Option<serde_json::Value>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Inner {
        #[serde(default)]
        a: u32,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Wrapped(Inner);

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Choice {
        One(Inner),
        Two { a: u32 },
        Three(Inner, Inner),
    }

    fn skipped(text: &str) -> bool {
        let read: Flagged<Outer> = serde_json::from_str(text).expect(text);
        let plain: Outer = serde_json::from_str(text).expect(text);
        assert_eq!(read.value, plain, "the same value as without the wrapper");
        read.skipped
    }

    #[test]
    fn a_skipped_field_is_noted_at_any_depth() {
        for clean in [
            r#"{}"#,
            r#"{"inner": {"a": 1}, "list": [{"a": 2}], "map": {"k": {"a": 3}}}"#,
            r#"{"choice": {"one": {"a": 1}}, "wrapped": {"a": 1}, "free": {"any": {"x": 1}}}"#,
            r#"{"choice": {"two": {"a": 1}}}"#,
            r#"{"choice": {"three": [{"a": 1}, {"a": 2}]}}"#,
        ] {
            assert!(!skipped(clean), "{clean}");
        }
        for unknown in [
            r#"{"x": 1}"#,
            r#"{"inner": {"a": 1, "x": 1}}"#,
            r#"{"list": [{"a": 2}, {"x": [1]}]}"#,
            r#"{"map": {"k": {"x": {}}}}"#,
            r#"{"choice": {"one": {"x": 1}}}"#,
            r#"{"choice": {"two": {"a": 1, "x": 1}}}"#,
            r#"{"choice": {"three": [{"a": 1}, {"x": 2}]}}"#,
            r#"{"wrapped": {"x": 1}}"#,
        ] {
            assert!(skipped(unknown), "{unknown}");
        }
    }
}
