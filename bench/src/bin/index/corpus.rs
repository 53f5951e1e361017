//! The documents, the queries and the answers they must get.
//!
//! Every document is generated from the seed, so the harness knows, for any query, the
//! exact set of matching keys; each subject's answers are checked against it.

use std::collections::HashSet;

use anyhow::{bail, ensure, Result};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

#[rustfmt::skip]
pub const CITIES: [&str; 100] = [
    "PortoAlegre", "Lisbon", "Porto", "Madrid", "Barcelona", "Valencia", "Seville", "Bilbao",
    "Paris", "Lyon", "Marseille", "Toulouse", "Nantes", "Bordeaux", "Lille", "Brussels",
    "Antwerp", "Amsterdam", "Rotterdam", "Utrecht", "Berlin", "Hamburg", "Munich", "Cologne",
    "Frankfurt", "Stuttgart", "Leipzig", "Dresden", "Vienna", "Graz", "Zurich", "Geneva",
    "Basel", "Milan", "Rome", "Naples", "Turin", "Bologna", "Florence", "Venice", "Athens",
    "Sofia", "Bucharest", "Budapest", "Prague", "Brno", "Warsaw", "Krakow", "Gdansk",
    "Vilnius", "Riga", "Tallinn", "Helsinki", "Stockholm", "Gothenburg", "Oslo", "Bergen",
    "Copenhagen", "Aarhus", "Dublin", "Cork", "London", "Manchester", "Leeds", "Glasgow",
    "Edinburgh", "Cardiff", "Reykjavik", "NewYork", "Boston", "Chicago", "Denver", "Seattle",
    "Portland", "SanFrancisco", "LosAngeles", "SanDiego", "Austin", "Houston", "Atlanta",
    "Miami", "Toronto", "Montreal", "Vancouver", "MexicoCity", "Guadalajara", "Bogota", "Lima",
    "Santiago", "BuenosAires", "Montevideo", "SaoPaulo", "RioDeJaneiro", "Curitiba", "Recife",
    "Salvador", "Fortaleza", "BeloHorizonte", "Brasilia", "Manaus",
];

#[rustfmt::skip]
const TAGS: [&str; 50] = [
    "rust", "golang", "python", "java", "kotlin", "swift", "haskell", "ocaml", "elixir",
    "erlang", "sql", "databases", "storage", "networking", "security", "cryptography",
    "compilers", "kernels", "distributed", "cloud", "devops", "frontend", "backend", "mobile",
    "gamedev", "graphics", "audio", "ml", "statistics", "math", "physics", "chemistry",
    "biology", "astronomy", "chess", "boardgames", "hiking", "climbing", "cycling", "running",
    "swimming", "sailing", "photography", "painting", "music", "cooking", "gardening",
    "travel", "reading", "coffee",
];

#[rustfmt::skip]
const FIRST_NAMES: [&str; 24] = [
    "Ana", "Bruno", "Carla", "Diego", "Elena", "Fabio", "Greta", "Hugo", "Ines", "Jonas",
    "Karin", "Luis", "Marta", "Nils", "Olga", "Pedro", "Quentin", "Rosa", "Sven", "Tania",
    "Ugo", "Vera", "Wim", "Yara",
];

#[rustfmt::skip]
const LAST_NAMES: [&str; 24] = [
    "Souza", "Silva", "Moreau", "Keller", "Rossi", "Novak", "Jensen", "Kowalski", "Garcia",
    "Dubois", "Fischer", "Costa", "Lindqvist", "Horvat", "Petrov", "Murphy", "Schmidt",
    "Bianchi", "Nieminen", "Almeida", "Ferreira", "Berg", "Romano", "Walsh",
];

#[rustfmt::skip]
const JOBS: [&str; 12] = [
    "Backend engineer", "Data analyst", "Teacher", "Nurse", "Architect", "Designer",
    "Product manager", "Researcher", "Accountant", "Chef", "Translator", "Electrician",
];

#[rustfmt::skip]
const ACTIVITIES: [&str; 12] = [
    "hiking", "cooking", "reading novels", "playing chess", "cycling", "painting",
    "sailing", "gardening", "running", "baking bread", "taking photos", "climbing",
];

const WHEN: [&str; 4] = ["weekends", "evenings", "holidays", "mornings"];

/// The smallest and largest age.
pub const AGES: (i64, i64) = (18, 90);

/// One query of a workload: a city, and for the AND workload an age range `[lo, hi)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    City(u8),
    CityAge { city: u8, lo: i64, hi: i64 },
}

impl Query {
    pub fn city(&self) -> &'static str {
        match *self {
            Query::City(c) | Query::CityAge { city: c, .. } => CITIES[usize::from(c)],
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            Query::City(_) => format!("city = {}", self.city()),
            Query::CityAge { lo, hi, .. } => {
                format!("city = {} and {lo} <= age < {hi}", self.city())
            }
        }
    }
}

/// One answer: a key and the stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub key: String,
    pub value: Vec<u8>,
}

/// The documents and, per document, the fields the queries test.
pub struct Corpus {
    /// `(key, JSON bytes)` in key order.
    pub docs: Vec<(String, Vec<u8>)>,
    city: Vec<u8>,
    age: Vec<u8>,
    /// Document numbers per city, ascending.
    by_city: Vec<Vec<u32>>,
}

pub fn key(i: usize) -> String {
    format!("users:{i:08}")
}

fn key_number(key: &str) -> Option<usize> {
    let digits = key.strip_prefix("users:")?;
    if digits.len() < 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl Corpus {
    /// `n` documents, the same for the same `n` and `seed`.
    pub fn generate(n: usize, seed: u64) -> Result<Corpus> {
        ensure!(
            n <= 100_000_000,
            "keys have 8 digits: at most 100,000,000 documents"
        );
        let mut rng = StdRng::seed_from_u64(seed);
        let mut docs = Vec::with_capacity(n);
        let mut city = Vec::with_capacity(n);
        let mut age = Vec::with_capacity(n);
        let mut by_city = vec![Vec::new(); CITIES.len()];
        for i in 0..n {
            let c = rng.random_range(0..CITIES.len());
            let a = rng.random_range(AGES.0..=AGES.1);
            let ntags = rng.random_range(2..=4);
            let tags: Vec<&str> = TAGS.choose_multiple(&mut rng, ntags).copied().collect();
            let name = format!(
                "{} {}",
                FIRST_NAMES.choose(&mut rng).expect("names"),
                LAST_NAMES.choose(&mut rng).expect("names")
            );
            let bio = format!(
                "{} from {} who spends {} {} and {}; currently learning {}.",
                JOBS.choose(&mut rng).expect("jobs"),
                CITIES[c],
                WHEN.choose(&mut rng).expect("when"),
                ACTIVITIES.choose(&mut rng).expect("activities"),
                ACTIVITIES.choose(&mut rng).expect("activities"),
                TAGS.choose(&mut rng).expect("tags"),
            );
            let doc = serde_json::json!({
                "name": name,
                "city": CITIES[c],
                "age": a,
                "tags": tags,
                "bio": bio,
            });
            docs.push((key(i), serde_json::to_vec(&doc)?));
            city.push(u8::try_from(c)?);
            age.push(u8::try_from(a)?);
            by_city[c].push(u32::try_from(i)?);
        }
        Ok(Corpus {
            docs,
            city,
            age,
            by_city,
        })
    }

    /// Mean, smallest and largest document size in bytes.
    pub fn sizes(&self) -> (f64, usize, usize) {
        let lens = self.docs.iter().map(|(_, v)| v.len());
        let total: usize = lens.clone().sum();
        let mean = total as f64 / self.docs.len().max(1) as f64;
        (
            mean,
            lens.clone().min().unwrap_or(0),
            lens.max().unwrap_or(0),
        )
    }

    fn matches(&self, i: usize, q: &Query) -> bool {
        match *q {
            Query::City(c) => self.city[i] == c,
            Query::CityAge { city, lo, hi } => {
                let a = i64::from(self.age[i]);
                self.city[i] == city && lo <= a && a < hi
            }
        }
    }

    /// How many documents match `q`.
    pub fn count(&self, q: &Query) -> usize {
        match *q {
            Query::City(c) => self.by_city[usize::from(c)].len(),
            Query::CityAge { city, .. } => self.by_city[usize::from(city)]
                .iter()
                .filter(|&&i| self.matches(i as usize, q))
                .count(),
        }
    }

    /// Checks an answer to `q` with `limit`: exactly `min(limit, matches)` hits, no key
    /// twice, every key matching `q` and carrying its own document.
    pub fn check(&self, q: &Query, limit: usize, hits: &[Hit]) -> Result<()> {
        let expected = self.count(q).min(limit);
        if hits.len() != expected {
            bail!(
                "{}, limit {limit}: {} hits, expected {expected}",
                q.describe(),
                hits.len()
            );
        }
        let mut seen = HashSet::with_capacity(hits.len());
        for h in hits {
            let Some(i) = key_number(&h.key).filter(|&i| i < self.docs.len()) else {
                bail!("{}: unknown key {:?}", q.describe(), h.key);
            };
            if !seen.insert(i) {
                bail!("{}: key {} returned twice", q.describe(), h.key);
            }
            if !self.matches(i, q) {
                bail!("{}: key {} does not match", q.describe(), h.key);
            }
            if h.value != self.docs[i].1 {
                bail!("{}: key {} came with another value", q.describe(), h.key);
            }
        }
        Ok(())
    }
}

/// `n` equality queries on uniformly random cities.
pub fn city_queries(n: usize, rng: &mut StdRng) -> Vec<Query> {
    (0..n)
        .map(|_| Query::City(rng.random_range(0..CITIES.len()) as u8))
        .collect()
}

/// `n` AND queries: a uniformly random city and a random age range of `span` years
/// inside the ages that occur.
pub fn city_age_queries(n: usize, span: i64, rng: &mut StdRng) -> Vec<Query> {
    let last_lo = (AGES.1 + 1 - span).max(AGES.0);
    (0..n)
        .map(|_| {
            let lo = rng.random_range(AGES.0..=last_lo);
            Query::CityAge {
                city: rng.random_range(0..CITIES.len()) as u8,
                lo,
                hi: lo + span,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_have_no_spaces() {
        let cities: HashSet<&str> = CITIES.iter().copied().collect();
        assert_eq!(cities.len(), CITIES.len());
        assert!(CITIES.iter().all(|c| !c.contains(' ')));
        let tags: HashSet<&str> = TAGS.iter().copied().collect();
        assert_eq!(tags.len(), TAGS.len());
    }

    #[test]
    fn generation_is_deterministic_and_checkable() {
        let a = Corpus::generate(500, 3).unwrap();
        let b = Corpus::generate(500, 3).unwrap();
        assert_eq!(a.docs, b.docs);
        let q = Query::City(a.city[7]);
        let hits: Vec<Hit> = (0..500)
            .filter(|&i| a.matches(i, &q))
            .map(|i| Hit {
                key: key(i),
                value: a.docs[i].1.clone(),
            })
            .collect();
        a.check(&q, usize::MAX, &hits).unwrap();
        assert!(a.check(&q, usize::MAX, &hits[1..]).is_err());
        let mut twice = hits.clone();
        twice[0] = twice[1].clone();
        assert!(a.check(&q, usize::MAX, &twice).is_err());
        let v: serde_json::Value = serde_json::from_slice(&a.docs[7].1).unwrap();
        assert_eq!(v["city"], q.city());
        assert_eq!(i64::from(a.age[7]), v["age"].as_i64().unwrap());
    }
}
