//! A `tracing` event as annotation text: `target: message field=value …`, formatted only when the
//! tick keeps the annotation.

use std::fmt::{self, Write};

use tracing::Event;
use tracing::field::{Field, Visit};

/// Formats an event as `target: message k=v …` (the message first, wherever its field is).
pub(super) struct EventText<'a, 'b>(pub(super) &'a Event<'b>);

impl fmt::Display for EventText<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.metadata().target())?;
        f.write_char(':')?;
        let mut message = Fields { f, message: true, result: Ok(()) };
        self.0.record(&mut message);
        message.result?;
        let mut rest = Fields { f, message: false, result: Ok(()) };
        self.0.record(&mut rest);
        rest.result
    }
}

/// Writes the `message` field (`message: true`) or every other field.
struct Fields<'a, 'f> {
    f: &'a mut fmt::Formatter<'f>,
    message: bool,
    result: fmt::Result,
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, &format_args!("{value:?}"));
    }
}

impl Fields<'_, '_> {
    fn write(&mut self, field: &Field, value: &dyn fmt::Display) {
        if self.result.is_err() || (field.name() == "message") != self.message {
            return;
        }
        self.result =
            if self.message { write!(self.f, " {value}") } else { write!(self.f, " {}={value}", field.name()) };
    }
}
