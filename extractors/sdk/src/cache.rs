//! The configured options, kept between calls and keyed by the options text.
//!
//! An index always passes the same text, so configuring once per text saves parsing
//! (and whatever `configure` prepares) on every record. A few texts are kept, for a
//! plugin that several indexes use with different options.

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;

use crate::{Extractor, Options};

/// Distinct options texts kept; the oldest is dropped beyond this.
const KEPT: usize = 8;

type Entry = (String, Rc<dyn Any>);

thread_local! {
    static CONFIGS: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// `E`'s configuration for `options`, from the cache or made now.
pub(crate) fn configured<E: Extractor>(options: &str) -> Rc<Result<E::Config, String>> {
    CONFIGS.with(|configs| {
        let found = configs
            .borrow()
            .iter()
            .find(|(text, _)| text == options)
            .map(|(_, config)| Rc::clone(config));
        if let Some(config) = found.and_then(|c| c.downcast().ok()) {
            return config;
        }
        let made: Rc<Result<E::Config, String>> =
            Rc::new(Options::parse(options).and_then(|o| E::configure(&o)));
        let mut configs = configs.borrow_mut();
        configs.retain(|(text, _)| text != options);
        if configs.len() >= KEPT {
            configs.remove(0);
        }
        configs.push((options.to_string(), Rc::clone(&made) as Rc<dyn Any>));
        made
    })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::Term;

    thread_local! {
        static CONFIGURED: Cell<usize> = const { Cell::new(0) };
    }

    struct Counting;

    impl Extractor for Counting {
        type Config = String;

        fn configure(options: &Options) -> Result<String, String> {
            CONFIGURED.with(|c| c.set(c.get() + 1));
            Ok(options.text().to_string())
        }

        fn extract(_: &String, _: &str, _: &[u8]) -> Result<Vec<Term>, String> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn configures_once_per_text_and_keeps_a_few() {
        let count = || CONFIGURED.with(Cell::get);
        let a = configured::<Counting>("{\"a\":1}");
        let again = configured::<Counting>("{\"a\":1}");
        assert!(Rc::ptr_eq(&a, &again));
        assert_eq!(count(), 1);
        for i in 0..KEPT - 1 {
            configured::<Counting>(&format!("{{\"i\":{i}}}"));
        }
        assert_eq!(count(), KEPT);
        configured::<Counting>("{\"a\":1}");
        assert_eq!(count(), KEPT, "still kept");
        configured::<Counting>("{\"new\":1}");
        configured::<Counting>("{\"a\":1}");
        assert_eq!(count(), KEPT + 2, "the oldest was dropped");
        assert_eq!(
            configured::<Counting>("{\"x\":2}").as_ref(),
            &Ok("{\"x\":2}".to_string())
        );
    }
}
