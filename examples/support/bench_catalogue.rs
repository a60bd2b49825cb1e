//! The generated 52-program benchmark catalogue (ILLUSTRATIVE), shared by
//! `examples/plan_national.rs` and `benches/plan.rs`.

const INDICATORS: [(&str, &str); 17] = [
    ("1.1", "household"),
    ("1.2", "household"),
    ("1.3", "household"),
    ("1.4", "person"),
    ("2.1", "household"),
    ("2.2", "household"),
    ("2.3", "household"),
    ("2.4", "household"),
    ("3.1", "person"),
    ("3.2", "person"),
    ("3.3", "person"),
    ("3.4", "person"),
    ("4.1", "person"),
    ("4.2", "person"),
    ("4.3", "household"),
    ("5.1", "person"),
    ("5.2", "person"),
];

/// 52 programs: per indicator a general program, one for the most deprived, one for the old or
/// disabled; plus a household program across the income dimension.
pub fn catalogue_toml() -> String {
    let mut t = String::from(
        "[catalogue]\nid = \"bench-52\"\nversion = \"1\"\nas_of = \"2026-10-01\"\nillustrative = true\n\
         [[agency]]\nid = \"a\"\nname_th = \"หน่วยงาน\"\nname_en = \"Agency\"\n",
    );
    for (k, (code, unit)) in INDICATORS.iter().enumerate() {
        let old = if *unit == "person" { "age >= 60 or disabled" } else { "any(age >= 60 or disabled)" };
        let rules = [("gen", "true", 400, 60), ("deep", "score >= 3/17", 150, 25), ("old", old, 200, 30)];
        for (suffix, rule, prov, amph) in rules {
            t += &format!(
                "[[program]]\nid = \"p{k}-{suffix}\"\nname_th = \"{code} {suffix}\"\nagency = \"a\"\naddresses = [\"{code}\"]\n\
                 unit = \"{unit}\"\neligible = \"{rule}\"\nbenefit = {{ kind = \"service\" }}\nunit_cost = 1000\n\
                 capacity = {{ per_province = {prov}, per_amphoe = {amph} }}\n"
            );
            if suffix == "deep" {
                t += &format!("excludes = [\"p{k}-gen\"]\n");
            }
        }
    }
    t += "[[program]]\nid = \"income-support\"\nname_th = \"income\"\nagency = \"a\"\naddresses = [\"income\"]\n\
          unit = \"household\"\neligible = \"deprivations >= 2\"\nbenefit = { kind = \"cash\", amount = 3000 }\n\
          unit_cost = 3000\ncapacity = { per_province = 2000 }\n";
    t
}
