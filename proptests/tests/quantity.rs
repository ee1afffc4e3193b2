//! Quantity strings parse back to the value they were rendered from.

use metrics_core::quantity::{Quantity, parse_nanos};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn cpu_quantities_round_trip(nanocores in prop_oneof![any::<u64>(), 0u64..10_000_000_000, (0u64..10_000).prop_map(|k| k * 1_000_000)]) {
        let text = Quantity::cpu_nanocores(nanocores).to_canonical();
        let parsed = parse_nanos(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e:?}")))?;
        if nanocores <= i64::MAX as u64 {
            prop_assert_eq!(parsed, i128::from(nanocores), "{}", text);
        } else {
            // Above i64::MAX upstream keeps one digit less (spec case 43).
            prop_assert_eq!(parsed, i128::from(nanocores / 10 * 10), "{}", text);
        }
    }

    #[test]
    fn memory_quantities_round_trip(bytes in prop_oneof![any::<u64>(), 0u64..1 << 40, (0u64..1 << 30).prop_map(|k| k * 4096)]) {
        let text = Quantity::memory_bytes(bytes).to_canonical();
        let parsed = parse_nanos(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e:?}")))?;
        let expected = if bytes <= i64::MAX as u64 { bytes } else { bytes / 10 * 10 };
        prop_assert_eq!(parsed, i128::from(expected) * 1_000_000_000, "{}", text);
    }

    #[test]
    fn quantity_parser_never_panics(text in "[-+0-9.eEkKMGTPinum]{0,24}") {
        let _ = parse_nanos(&text);
    }
}
