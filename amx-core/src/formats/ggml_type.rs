//! The names of ggml's tensor types, by `GGML_TYPE_*` id: one table for every message
//! that names a type this crate does not handle.

/// ggml's `enum ggml_type` (ggml/include/ggml.h), by id. `None` marks the ids ggml
/// removed (4, 5: Q4_2, Q4_3; 31..=33: the Q4_0_x_y repacks; 36..=38: IQ4_NL_x_y), which
/// no GGUF file may hold.
const NAMES: [Option<&str>; 42] = [
    Some("F32"),     // 0
    Some("F16"),     // 1
    Some("Q4_0"),    // 2
    Some("Q4_1"),    // 3
    None,            // 4 (Q4_2, removed)
    None,            // 5 (Q4_3, removed)
    Some("Q5_0"),    // 6
    Some("Q5_1"),    // 7
    Some("Q8_0"),    // 8
    Some("Q8_1"),    // 9
    Some("Q2_K"),    // 10
    Some("Q3_K"),    // 11
    Some("Q4_K"),    // 12
    Some("Q5_K"),    // 13
    Some("Q6_K"),    // 14
    Some("Q8_K"),    // 15
    Some("IQ2_XXS"), // 16
    Some("IQ2_XS"),  // 17
    Some("IQ3_XXS"), // 18
    Some("IQ1_S"),   // 19
    Some("IQ4_NL"),  // 20
    Some("IQ3_S"),   // 21
    Some("IQ2_S"),   // 22
    Some("IQ4_XS"),  // 23
    Some("I8"),      // 24
    Some("I16"),     // 25
    Some("I32"),     // 26
    Some("I64"),     // 27
    Some("F64"),     // 28
    Some("IQ1_M"),   // 29
    Some("BF16"),    // 30
    None,            // 31 (Q4_0_4_4, removed)
    None,            // 32 (Q4_0_4_8, removed)
    None,            // 33 (Q4_0_8_8, removed)
    Some("TQ1_0"),   // 34
    Some("TQ2_0"),   // 35
    None,            // 36 (IQ4_NL_4_4, removed)
    None,            // 37 (IQ4_NL_4_8, removed)
    None,            // 38 (IQ4_NL_8_8, removed)
    Some("MXFP4"),   // 39
    Some("NVFP4"),   // 40
    Some("Q1_0"),    // 41
];

/// The ggml name of `GGML_TYPE_*` id `id` ("Q5_0" for 6, "F32" for 0), or `None` for an
/// id ggml does not define (removed ids such as 4 and 5 included).
pub const fn ggml_type_name(id: u32) -> Option<&'static str> {
    if id as usize >= NAMES.len() {
        return None;
    }
    NAMES[id as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::Format;

    #[test]
    fn names_follow_ggml_h() {
        let some = [
            (0, "F32"),
            (1, "F16"),
            (2, "Q4_0"),
            (3, "Q4_1"),
            (6, "Q5_0"),
            (7, "Q5_1"),
            (8, "Q8_0"),
            (9, "Q8_1"),
            (10, "Q2_K"),
            (15, "Q8_K"),
            (16, "IQ2_XXS"),
            (20, "IQ4_NL"),
            (23, "IQ4_XS"),
            (24, "I8"),
            (28, "F64"),
            (29, "IQ1_M"),
            (30, "BF16"),
            (34, "TQ1_0"),
            (35, "TQ2_0"),
            (39, "MXFP4"),
            (40, "NVFP4"),
            (41, "Q1_0"),
        ];
        for (id, name) in some {
            assert_eq!(ggml_type_name(id), Some(name), "id {id}");
        }
        for id in [4, 5, 31, 32, 33, 36, 37, 38, 42, 77, u32::MAX] {
            assert_eq!(ggml_type_name(id), None, "id {id}");
        }
        // The formats this crate handles carry their ggml names.
        for f in Format::ALL {
            assert_eq!(ggml_type_name(f.ggml_type()), Some(f.name()), "{f}");
        }
    }
}
