//! Eligibility rules: a typed tree of and / or / not over predicates, parsed from a readable text
//! form and evaluated in three-valued logic (pass, fail, unknown) with a reason for every leaf.
//!
//! The grammar (keywords in English or Thai; `#` is not special):
//!
//! ```text
//! rule      := or
//! or        := and ( ("or" | "หรือ") and )*
//! and       := unary ( ("and" | "และ") unary )*
//! unary     := ("not" | "ไม่") unary | primary
//! primary   := "(" rule ")" | ("any" | "all") "(" rule ")" | "true" | predicate
//! predicate := "deprived" "(" indicator ")"        household (or, in a person program, the
//!                                                   person's own status for person indicators)
//!            | "dimension" "(" health|living|education|income|access ")"
//!            | "poor" | "target" | "disabled"
//!            | field op value | field "in" "(" value ("," value)* ")"
//! field     := age | sex | welfare | members | income | score | deprivations
//!            | province | amphoe | tambon | village | area
//! op        := "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "≤" | "≥"
//! ```
//!
//! `age`, `sex`, `welfare` and `disabled` are facts about a person. In a person program they are
//! the person's; in a household program they must sit inside `any(...)` (some member) or
//! `all(...)` (every member) — a bare one is a parse error, so nobody writes `age >= 60` for a
//! household and wonders whose age it was.
//!
//! Missing data gives **unknown** (Kleene logic: `fail and unknown` = fail, `pass or unknown` =
//! pass, `not unknown` = unknown). A not-applicable indicator is not deprived.
//!
//! ```
//! use tpmap::indicators::Edition;
//! use tpmap::programs::rule::Rule;
//! use tpmap::score::Unit;
//! let e = Edition::bmn_2560();
//! let r = Rule::parse("deprived(2.1) and any(age >= 60 or disabled) and income < 40000", &e, Unit::Households)?;
//! assert_eq!(r.to_string(), "deprived(2.1) and any(age >= 60 or disabled) and income < 40000");
//! let err = Rule::parse("deprived(2.1) and agee >= 60", &e, Unit::Households).unwrap_err();
//! assert!(err.to_string().contains("column 19"));
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::fmt;

use serde::Serialize;

use crate::areas::AreaCode;
use crate::extract::Sex;
use crate::indicators::{Dimension, Edition, IndicatorStatus};
use crate::rational::Rational;
use crate::score::Unit;
use crate::{Error, Result};

/// The outcome of a rule or of one of its leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The condition holds.
    Pass,
    /// The condition does not hold.
    Fail,
    /// Data needed to decide is missing.
    Unknown,
}

impl Outcome {
    fn and(self, o: Outcome) -> Outcome {
        match (self, o) {
            (Outcome::Fail, _) | (_, Outcome::Fail) => Outcome::Fail,
            (Outcome::Unknown, _) | (_, Outcome::Unknown) => Outcome::Unknown,
            _ => Outcome::Pass,
        }
    }
    pub(crate) fn or(self, o: Outcome) -> Outcome {
        match (self, o) {
            (Outcome::Pass, _) | (_, Outcome::Pass) => Outcome::Pass,
            (Outcome::Unknown, _) | (_, Outcome::Unknown) => Outcome::Unknown,
            _ => Outcome::Fail,
        }
    }
    fn not(self) -> Outcome {
        match self {
            Outcome::Pass => Outcome::Fail,
            Outcome::Fail => Outcome::Pass,
            Outcome::Unknown => Outcome::Unknown,
        }
    }
    fn of(b: Option<bool>) -> Outcome {
        match b {
            Some(true) => Outcome::Pass,
            Some(false) => Outcome::Fail,
            None => Outcome::Unknown,
        }
    }
    /// A one-word English name.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Cmp {
    fn test(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Cmp::Eq => o == Equal,
            Cmp::Ne => o != Equal,
            Cmp::Lt => o == Less,
            Cmp::Le => o != Greater,
            Cmp::Gt => o == Greater,
            Cmp::Ge => o != Less,
        }
    }
    fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

/// Welfare-card state of a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WelfareState {
    /// Not registered.
    None,
    /// Registered (validated or not).
    Registered,
    /// Registered and validated by the Ministry of Finance.
    Validated,
}

/// One condition on a household or a person.
#[derive(Clone, Debug, PartialEq)]
pub enum Predicate {
    /// Person's age in completed years.
    Age(Cmp, u32),
    /// Person's sex (`true` for `=`, `false` for `!=`).
    Sex(bool, Sex),
    /// Person's welfare-card state (`true` for `=`).
    Welfare(bool, WelfareState),
    /// Person has a disability.
    Disabled,
    /// Household size.
    Members(Cmp, u32),
    /// Income per member per year (baht).
    Income(Cmp, f64),
    /// Deprivation score under the plan's scoring rule, compared exactly.
    Score(Cmp, Rational),
    /// Number of deprived indicators counted by the scoring rule.
    Deprivations(Cmp, u32),
    /// The household lives in one of these areas (codes of any level; prefix match).
    Area(bool, Vec<AreaCode>),
    /// Deprived in this indicator (edition position, and its label as written in outputs).
    Deprived(usize, String),
    /// Deprived in any counted indicator of this dimension.
    Dimension(Dimension),
    /// Poor under the plan's scoring rule.
    Poor,
    /// Target poor (poor and meeting the welfare condition).
    Target,
    /// Always true (a program open to every household that needs it).
    True,
}

/// A node of a rule. `span` is the byte range of the node's text in the source.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// All must pass.
    And(Vec<Node>),
    /// One must pass.
    Or(Vec<Node>),
    /// `not`: pass and fail swap, unknown stays unknown.
    Not(Box<Node>),
    /// Some member of the household passes.
    Any(Box<Node>, (usize, usize)),
    /// Every member of the household passes.
    All(Box<Node>, (usize, usize)),
    /// A leaf.
    Leaf(Predicate, (usize, usize)),
}

/// A parsed eligibility rule with its source text.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The text it was parsed from.
    pub source: String,
    /// The tree.
    pub root: Node,
    /// Unit the rule is evaluated for.
    pub unit: Unit,
}

/// What a rule needs to know about households and persons.
pub trait Facts {
    /// Members of household `h` (person rows).
    fn members(&self, h: usize) -> std::ops::Range<usize>;
    /// Age of person `p`.
    fn age(&self, p: usize) -> Option<u8>;
    /// Sex of person `p`.
    fn sex(&self, p: usize) -> Sex;
    /// Disability of person `p`.
    fn disabled(&self, p: usize) -> Option<bool>;
    /// Welfare registration and validation of person `p`.
    fn welfare(&self, p: usize) -> (Option<bool>, Option<bool>);
    /// Household size.
    fn household_size(&self, h: usize) -> u32;
    /// Income per member per year.
    fn income(&self, h: usize) -> Option<f64>;
    /// Exact score as (numerator, denominator), or `None` when the household was dropped.
    fn score(&self, h: usize) -> Option<(u64, u64)>;
    /// Deprived indicators counted by the scoring rule (mask), or `None` when dropped.
    fn counted(&self, h: usize) -> Option<u64>;
    /// Mask of the scoring rule's indicators in dimension `d`.
    fn dimension_mask(&self, d: Dimension) -> u64;
    /// Status of indicator `i` for household `h` (rolled up over members).
    fn household_status(&self, h: usize, i: usize) -> Option<IndicatorStatus>;
    /// Status of person-level indicator `i` for person `p`.
    fn person_status(&self, p: usize, i: usize) -> Option<IndicatorStatus>;
    /// Poor under the scoring rule.
    fn poor(&self, h: usize) -> bool;
    /// Target poor.
    fn target(&self, h: usize) -> bool;
    /// Village of household `h`.
    fn village(&self, h: usize) -> &AreaCode;
    /// Whether indicator `i` is a person-level indicator.
    fn person_level(&self, i: usize) -> bool;
}

/// One line of an explanation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleStep {
    /// Nesting depth (0 for the whole rule).
    pub depth: usize,
    /// The condition's text as written.
    pub condition: String,
    /// Its outcome.
    pub outcome: Outcome,
    /// The facts it was decided on ("age 67", "income not reported").
    pub facts: String,
}

impl fmt::Display for RuleStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.outcome {
            Outcome::Pass => "✓",
            Outcome::Fail => "✗",
            Outcome::Unknown => "?",
        };
        write!(f, "{:indent$}{mark} {}", "", self.condition, indent = 2 * self.depth)?;
        if !self.facts.is_empty() {
            write!(f, " — {}", self.facts)?;
        }
        Ok(())
    }
}

impl Rule {
    /// Parses `text` for a program of `unit`, resolving indicator codes in `edition`. Errors name
    /// the column (in characters, 1-based) and show the text with a caret.
    pub fn parse(text: &str, edition: &Edition, unit: Unit) -> Result<Rule> {
        Rule::parse_with_depth(text, edition, unit, crate::limits::DEFAULT_RULE_DEPTH)
    }

    /// [`Rule::parse`] with a nesting limit: parentheses, `not` and `any(...)`/`all(...)` may
    /// nest at most `max_depth` deep (a rule of 200,000 parentheses is an error, not a stack
    /// overflow).
    pub fn parse_with_depth(text: &str, edition: &Edition, unit: Unit, max_depth: usize) -> Result<Rule> {
        let tokens = lex(text)?;
        let mut p = Parser { text, tokens, pos: 0, edition, unit, quantified: 0, depth: 0, max_depth };
        let root = if p.tokens.is_empty() { Node::Leaf(Predicate::True, (0, 0)) } else { p.or()? };
        if let Some(t) = p.tokens.get(p.pos) {
            return Err(p.error(t.start, format!("unexpected '{}' after a complete rule", t.text)));
        }
        Ok(Rule { source: text.to_string(), root, unit })
    }

    /// Outcome for household `h`, or for person `person` of it in a person program.
    pub fn eval<F: Facts + ?Sized>(&self, f: &F, h: usize, person: Option<usize>) -> Outcome {
        eval(&self.root, f, h, person)
    }

    /// The outcome with a reason for every condition, in the order written.
    pub fn explain<F: Facts + ?Sized>(&self, f: &F, h: usize, person: Option<usize>) -> (Outcome, Vec<RuleStep>) {
        let mut out = Vec::new();
        let o = explain(&self.root, &self.source, f, h, person, 0, &mut out);
        (o, out)
    }

    /// Indicators the rule reads (mask), for checking that they are in the data.
    pub fn indicators(&self) -> u64 {
        fn walk(n: &Node, m: &mut u64) {
            match n {
                Node::And(v) | Node::Or(v) => v.iter().for_each(|c| walk(c, m)),
                Node::Not(c) | Node::Any(c, _) | Node::All(c, _) => walk(c, m),
                Node::Leaf(Predicate::Deprived(i, _), _) => *m |= 1 << i,
                Node::Leaf(..) => {}
            }
        }
        let mut m = 0;
        walk(&self.root, &mut m);
        m
    }
}

impl fmt::Display for Rule {
    /// The rule in a canonical text form (single spaces, lower-case keywords).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn node(n: &Node, top: bool, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let join = |v: &Vec<Node>, sep: &str, f: &mut fmt::Formatter<'_>| -> fmt::Result {
                if !top {
                    f.write_str("(")?;
                }
                for (i, c) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    node(c, false, f)?;
                }
                if !top {
                    f.write_str(")")?;
                }
                Ok(())
            };
            match n {
                Node::And(v) => join(v, " and ", f),
                Node::Or(v) => join(v, " or ", f),
                Node::Not(c) => {
                    f.write_str("not ")?;
                    node(c, false, f)
                }
                Node::Any(c, _) => {
                    f.write_str("any(")?;
                    node(c, true, f)?;
                    f.write_str(")")
                }
                Node::All(c, _) => {
                    f.write_str("all(")?;
                    node(c, true, f)?;
                    f.write_str(")")
                }
                Node::Leaf(p, _) => write!(f, "{}", PredicateText(p)),
            }
        }
        node(&self.root, true, f)
    }
}

struct PredicateText<'a>(&'a Predicate);

impl fmt::Display for PredicateText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let eq = |b: bool| if b { "=" } else { "!=" };
        match self.0 {
            Predicate::Age(c, v) => write!(f, "age {} {v}", c.symbol()),
            Predicate::Sex(b, s) => write!(f, "sex {} {}", eq(*b), if *s == Sex::Male { "male" } else { "female" }),
            Predicate::Welfare(b, w) => write!(
                f,
                "welfare {} {}",
                eq(*b),
                match w {
                    WelfareState::None => "none",
                    WelfareState::Registered => "registered",
                    WelfareState::Validated => "validated",
                }
            ),
            Predicate::Disabled => f.write_str("disabled"),
            Predicate::Members(c, v) => write!(f, "members {} {v}", c.symbol()),
            Predicate::Income(c, v) => write!(f, "income {} {v}", c.symbol()),
            Predicate::Score(c, v) => write!(f, "score {} {v}", c.symbol()),
            Predicate::Deprivations(c, v) => write!(f, "deprivations {} {v}", c.symbol()),
            Predicate::Area(b, v) => {
                let codes: Vec<&str> = v.iter().map(|a| a.as_str()).collect();
                if *b {
                    write!(f, "area in ({})", codes.join(", "))
                } else {
                    write!(f, "not area in ({})", codes.join(", "))
                }
            }
            Predicate::Deprived(_, label) => write!(f, "deprived({label})"),
            Predicate::Dimension(d) => write!(f, "dimension({})", d.name()),
            Predicate::Poor => f.write_str("poor"),
            Predicate::Target => f.write_str("target"),
            Predicate::True => f.write_str("true"),
        }
    }
}

fn eval<F: Facts + ?Sized>(n: &Node, f: &F, h: usize, person: Option<usize>) -> Outcome {
    match n {
        Node::And(v) => {
            let mut o = Outcome::Pass;
            for c in v {
                o = o.and(eval(c, f, h, person));
                if o == Outcome::Fail {
                    break;
                }
            }
            o
        }
        Node::Or(v) => {
            let mut o = Outcome::Fail;
            for c in v {
                o = o.or(eval(c, f, h, person));
                if o == Outcome::Pass {
                    break;
                }
            }
            o
        }
        Node::Not(c) => eval(c, f, h, person).not(),
        Node::Any(c, _) => {
            let mut o = Outcome::Fail;
            for p in f.members(h) {
                o = o.or(eval(c, f, h, Some(p)));
                if o == Outcome::Pass {
                    break;
                }
            }
            o
        }
        Node::All(c, _) => {
            let mut o = Outcome::Pass;
            for p in f.members(h) {
                o = o.and(eval(c, f, h, Some(p)));
                if o == Outcome::Fail {
                    break;
                }
            }
            o
        }
        Node::Leaf(p, _) => leaf(p, f, h, person).0,
    }
}

fn status_deprived(s: Option<IndicatorStatus>) -> Option<bool> {
    match s {
        Some(IndicatorStatus::Fail) => Some(true),
        Some(IndicatorStatus::Pass) | Some(IndicatorStatus::NotApplicable) => Some(false),
        Some(IndicatorStatus::Missing) | None => None,
    }
}

fn status_word(s: Option<IndicatorStatus>) -> &'static str {
    match s {
        Some(IndicatorStatus::Fail) => "fails",
        Some(IndicatorStatus::Pass) => "passes",
        Some(IndicatorStatus::NotApplicable) => "not applicable",
        Some(IndicatorStatus::Missing) => "not recorded",
        None => "not in the data",
    }
}

/// Outcome and the facts behind it. The facts string is only built when `explain` asks; the
/// closure keeps the fast path free of allocation.
fn leaf<F: Facts + ?Sized>(p: &Predicate, f: &F, h: usize, person: Option<usize>) -> (Outcome, Fact) {
    let cmp_num = |c: Cmp, a: f64, b: f64| c.test(a.total_cmp(&b));
    match p {
        Predicate::Age(c, v) => {
            // The parser keeps person facts in a person context; a caller evaluating a person
            // rule without a person gets unknown, not a panic.
            let Some(who) = person else { return (Outcome::Unknown, Fact::None) };
            let age = f.age(who);
            (Outcome::of(age.map(|a| c.test((a as u32).cmp(v)))), Fact::Age(age))
        }
        Predicate::Sex(eq, s) => {
            let Some(who) = person else { return (Outcome::Unknown, Fact::None) };
            let got = f.sex(who);
            let o = if got == Sex::Unknown { Outcome::Unknown } else { Outcome::of(Some((got == *s) == *eq)) };
            (o, Fact::Sex(got))
        }
        Predicate::Welfare(eq, w) => {
            let Some(who) = person else { return (Outcome::Unknown, Fact::None) };
            let (reg, val) = f.welfare(who);
            let is = match w {
                WelfareState::Validated => val,
                WelfareState::Registered => reg,
                WelfareState::None => reg.map(|r| !r),
            };
            (Outcome::of(is.map(|b| b == *eq)), Fact::Welfare(reg, val))
        }
        Predicate::Disabled => {
            let Some(who) = person else { return (Outcome::Unknown, Fact::None) };
            let d = f.disabled(who);
            (Outcome::of(d), Fact::Disabled(d))
        }
        Predicate::Members(c, v) => {
            let m = f.household_size(h);
            (Outcome::of(Some(c.test(m.cmp(v)))), Fact::Members(m))
        }
        Predicate::Income(c, v) => {
            let i = f.income(h);
            (Outcome::of(i.map(|i| cmp_num(*c, i, *v))), Fact::Income(i))
        }
        Predicate::Score(c, v) => {
            let s = f.score(h);
            // num/den against the constant, exactly (256-bit cross products: no overflow).
            let o = s
                .filter(|&(_, den)| den > 0)
                .map(|(num, den)| c.test(crate::rational::cmp_fractions(num as u128, den as u128, v.num(), v.den())));
            (Outcome::of(o), Fact::Score(s))
        }
        Predicate::Deprivations(c, v) => {
            let d = f.counted(h).map(|m| m.count_ones());
            (Outcome::of(d.map(|d| c.test(d.cmp(v)))), Fact::Count(d))
        }
        Predicate::Area(inside, codes) => {
            let v = f.village(h);
            let hit = codes.iter().any(|c| v.as_str().starts_with(c.as_str()));
            (Outcome::of(Some(hit == *inside)), Fact::Village(*v))
        }
        Predicate::Deprived(i, _) => {
            let s = match person {
                Some(p) if f.person_level(*i) => f.person_status(p, *i),
                _ => f.household_status(h, *i),
            };
            (Outcome::of(status_deprived(s)), Fact::Status(s))
        }
        Predicate::Dimension(d) => {
            let m = f.counted(h);
            (
                Outcome::of(m.map(|m| m & f.dimension_mask(*d) != 0)),
                Fact::Dimension(m.map(|m| m & f.dimension_mask(*d))),
            )
        }
        Predicate::Poor => {
            let b = f.poor(h);
            (Outcome::of(Some(b)), Fact::Flag(b))
        }
        Predicate::Target => {
            let b = f.target(h);
            (Outcome::of(Some(b)), Fact::Flag(b))
        }
        Predicate::True => (Outcome::Pass, Fact::None),
    }
}

/// The facts one leaf looked at, rendered only for explanations.
enum Fact {
    Age(Option<u8>),
    Sex(Sex),
    Welfare(Option<bool>, Option<bool>),
    Disabled(Option<bool>),
    Members(u32),
    Income(Option<f64>),
    Score(Option<(u64, u64)>),
    Count(Option<u32>),
    Village(AreaCode),
    Status(Option<IndicatorStatus>),
    Dimension(Option<u64>),
    Flag(bool),
    None,
}

impl Fact {
    fn render(&self) -> String {
        match self {
            Fact::Age(Some(a)) => format!("age {a}"),
            Fact::Age(None) => "age not known".into(),
            Fact::Sex(Sex::Male) => "male".into(),
            Fact::Sex(Sex::Female) => "female".into(),
            Fact::Sex(Sex::Unknown) => "sex not recorded".into(),
            Fact::Welfare(reg, val) => match (reg, val) {
                (_, Some(true)) => "welfare card validated".into(),
                (Some(true), _) => "welfare card registered, not validated".into(),
                (Some(false), _) => "no welfare card".into(),
                (None, _) => "welfare card not recorded".into(),
            },
            Fact::Disabled(Some(true)) => "disabled".into(),
            Fact::Disabled(Some(false)) => "not disabled".into(),
            Fact::Disabled(None) => "disability not recorded".into(),
            Fact::Members(m) => format!("{m} members"),
            Fact::Income(Some(i)) => format!("income {i:.0} baht per member per year"),
            Fact::Income(None) => "income not reported".into(),
            Fact::Score(Some((n, d))) => match Rational::checked_new(u128::from(*n), u128::from(*d)) {
                Some(r) => format!("score {r}"),
                None => format!("score {n}/{d}"),
            },
            Fact::Score(None) | Fact::Count(None) | Fact::Dimension(None) => "not scored (missing indicators)".into(),
            Fact::Count(Some(c)) => format!("{c} deprivations"),
            Fact::Village(v) => format!("village {}", v.as_str()),
            Fact::Status(s) => status_word(*s).into(),
            Fact::Dimension(Some(m)) => format!("{} deprived indicators in the dimension", m.count_ones()),
            Fact::Flag(b) => (if *b { "yes" } else { "no" }).into(),
            Fact::None => String::new(),
        }
    }
}

fn span_of(n: &Node) -> (usize, usize) {
    match n {
        Node::And(v) | Node::Or(v) => (span_of(&v[0]).0, span_of(&v[v.len() - 1]).1),
        Node::Not(c) => span_of(c),
        Node::Any(_, s) | Node::All(_, s) | Node::Leaf(_, s) => *s,
    }
}

fn explain<F: Facts + ?Sized>(
    n: &Node,
    src: &str,
    f: &F,
    h: usize,
    person: Option<usize>,
    depth: usize,
    out: &mut Vec<RuleStep>,
) -> Outcome {
    let text = |n: &Node| {
        let (a, b) = span_of(n);
        src[a..b].trim().to_string()
    };
    match n {
        Node::And(v) | Node::Or(v) => {
            let at = out.len();
            out.push(RuleStep { depth, condition: String::new(), outcome: Outcome::Pass, facts: String::new() });
            let and = matches!(n, Node::And(_));
            let mut o = if and { Outcome::Pass } else { Outcome::Fail };
            for c in v {
                let r = explain(c, src, f, h, person, depth + 1, out);
                o = if and { o.and(r) } else { o.or(r) };
            }
            out[at] = RuleStep {
                depth,
                condition: if and { "all of".into() } else { "any of".into() },
                outcome: o,
                facts: String::new(),
            };
            o
        }
        Node::Not(c) => {
            let at = out.len();
            out.push(RuleStep { depth, condition: String::new(), outcome: Outcome::Pass, facts: String::new() });
            let o = explain(c, src, f, h, person, depth + 1, out).not();
            out[at] = RuleStep { depth, condition: "not".into(), outcome: o, facts: String::new() };
            o
        }
        Node::Any(c, _) | Node::All(c, _) => {
            let any = matches!(n, Node::Any(..));
            let members: Vec<usize> = f.members(h).collect();
            let outcomes: Vec<Outcome> = members.iter().map(|&p| eval(c, f, h, Some(p))).collect();
            let o = outcomes
                .iter()
                .fold(if any { Outcome::Fail } else { Outcome::Pass }, |a, &b| if any { a.or(b) } else { a.and(b) });
            let count = |w: Outcome| outcomes.iter().filter(|&&x| x == w).count();
            out.push(RuleStep {
                depth,
                condition: text(n),
                outcome: o,
                facts: format!(
                    "{} members: {} pass, {} fail, {} unknown",
                    members.len(),
                    count(Outcome::Pass),
                    count(Outcome::Fail),
                    count(Outcome::Unknown)
                ),
            });
            // Show the deciding member: the first whose outcome equals the whole's.
            if let Some(k) = outcomes.iter().position(|&x| x == o) {
                let before = out.len();
                explain(c, src, f, h, Some(members[k]), depth + 1, out);
                out[before].facts = format!("member {} of {}", k + 1, members.len())
                    + if out[before].facts.is_empty() { "" } else { ": " }
                    + &out[before].facts;
            }
            o
        }
        Node::Leaf(p, _) => {
            let (o, facts) = leaf(p, f, h, person);
            out.push(RuleStep { depth, condition: text(n), outcome: o, facts: facts.render() });
            o
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer and parser. Hand-written: the grammar is small, and errors must point at a column of a
// Thai text, which parser generators report in bytes.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word,
    LParen,
    RParen,
    Comma,
    Op(Cmp),
}

#[derive(Debug, Clone)]
struct Token<'a> {
    kind: Tok,
    text: &'a str,
    start: usize,
    end: usize,
}

fn lex(text: &str) -> Result<Vec<Token<'_>>> {
    let mut out = Vec::new();
    let mut it = text.char_indices().peekable();
    while let Some(&(i, c)) = it.peek() {
        if c.is_whitespace() || c == '\u{200b}' {
            it.next();
            continue;
        }
        let single = |k: Tok, len: usize| Token { kind: k, text: &text[i..i + len], start: i, end: i + len };
        match c {
            '(' => {
                out.push(single(Tok::LParen, 1));
                it.next();
            }
            ')' => {
                out.push(single(Tok::RParen, 1));
                it.next();
            }
            ',' => {
                out.push(single(Tok::Comma, 1));
                it.next();
            }
            '=' | '!' | '<' | '>' | '≤' | '≥' => {
                it.next();
                let next_eq = it.peek().map(|&(_, n)| n == '=').unwrap_or(false);
                let (op, len) = match (c, next_eq) {
                    ('=', true) => (Cmp::Eq, 2),
                    ('=', false) => (Cmp::Eq, 1),
                    ('!', true) => (Cmp::Ne, 2),
                    ('<', true) => (Cmp::Le, 2),
                    ('<', false) => (Cmp::Lt, 1),
                    ('>', true) => (Cmp::Ge, 2),
                    ('>', false) => (Cmp::Gt, 1),
                    ('≤', _) => (Cmp::Le, c.len_utf8()),
                    ('≥', _) => (Cmp::Ge, c.len_utf8()),
                    _ => {
                        return Err(rule_error(text, i, "'!' must be followed by '=' (use 'not' to negate)".into()));
                    }
                };
                if len == 2 {
                    it.next();
                }
                out.push(single(Tok::Op(op), len));
            }
            _ => {
                let start = i;
                let mut end = i;
                while let Some(&(j, d)) = it.peek() {
                    if d.is_whitespace() || "(),=!<>≤≥\u{200b}".contains(d) {
                        break;
                    }
                    end = j + d.len_utf8();
                    it.next();
                }
                out.push(Token { kind: Tok::Word, text: &text[start..end], start, end });
            }
        }
    }
    Ok(out)
}

fn rule_error(text: &str, byte: usize, message: String) -> Error {
    let column = text[..byte.min(text.len())].chars().count() + 1;
    Error::Rule { context: String::new(), text: text.to_string(), column, message }
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token<'a>>,
    pos: usize,
    edition: &'a Edition,
    unit: Unit,
    quantified: usize,
    /// Current nesting and its limit.
    depth: usize,
    max_depth: usize,
}

const FIELDS: &str = "age, sex, welfare, disabled, members, income, score, deprivations, province, amphoe, tambon, \
                      village, area, deprived(…), dimension(…), poor, target";

fn keyword(w: &str) -> Option<&'static str> {
    let lower = w.to_ascii_lowercase();
    Some(match lower.as_str() {
        "and" | "และ" => "and",
        "or" | "หรือ" => "or",
        "not" | "ไม่" | "ไม่ใช่" => "not",
        "any" | "มีสมาชิก" => "any",
        "all" | "สมาชิกทุกคน" => "all",
        "in" | "ใน" => "in",
        "true" => "true",
        "age" | "อายุ" => "age",
        "sex" | "เพศ" => "sex",
        "welfare" | "บัตรสวัสดิการ" => "welfare",
        "disabled" | "พิการ" => "disabled",
        "members" | "สมาชิก" => "members",
        "income" | "รายได้" => "income",
        "score" | "คะแนน" => "score",
        "deprivations" => "deprivations",
        "province" | "จังหวัด" => "province",
        "amphoe" | "district" | "อำเภอ" => "amphoe",
        "tambon" | "subdistrict" | "ตำบล" => "tambon",
        "village" | "หมู่บ้าน" => "village",
        "area" | "พื้นที่" => "area",
        "deprived" | "ตกเกณฑ์" => "deprived",
        "dimension" | "มิติ" => "dimension",
        "poor" | "คนจน" => "poor",
        "target" | "คนจนเป้าหมาย" => "target",
        _ => return None,
    })
}

impl<'a> Parser<'a> {
    fn error(&self, byte: usize, message: String) -> Error {
        rule_error(self.text, byte, message)
    }
    fn end(&self) -> usize {
        self.text.len()
    }
    fn peek(&self) -> Option<&Token<'a>> {
        self.tokens.get(self.pos)
    }
    fn peek_kw(&self) -> Option<&'static str> {
        self.peek().filter(|t| t.kind == Tok::Word).and_then(|t| keyword(t.text))
    }
    fn next(&mut self, what: &str) -> Result<Token<'a>> {
        match self.tokens.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(t.clone())
            }
            None => Err(self.error(self.end(), format!("the rule ends where {what} was expected"))),
        }
    }
    fn expect(&mut self, kind: Tok, what: &str) -> Result<Token<'a>> {
        let t = self.next(what)?;
        if t.kind != kind {
            return Err(self.error(t.start, format!("expected {what}, found '{}'", t.text)));
        }
        Ok(t)
    }

    /// Enters one level of nesting at `byte`, or fails past the limit.
    fn nest(&mut self, byte: usize) -> Result<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(Error::Limit {
                file: String::new(),
                message: format!(
                    "the rule nests deeper than {} levels (parentheses, not, any/all) at column {}: simplify it, or raise --max-rule-depth",
                    self.max_depth,
                    self.text[..byte.min(self.text.len())].chars().count() + 1
                ),
            });
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Node> {
        let mut v = vec![self.and()?];
        while self.peek_kw() == Some("or") {
            self.pos += 1;
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 { v.pop().expect("one") } else { Node::Or(v) })
    }

    fn and(&mut self) -> Result<Node> {
        let mut v = vec![self.unary()?];
        while self.peek_kw() == Some("and") {
            self.pos += 1;
            v.push(self.unary()?);
        }
        Ok(if v.len() == 1 { v.pop().expect("one") } else { Node::And(v) })
    }

    fn unary(&mut self) -> Result<Node> {
        if self.peek_kw() == Some("not") {
            let at = self.peek().map_or(0, |t| t.start);
            self.pos += 1;
            self.nest(at)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Node::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node> {
        let t = self.next("a condition")?;
        match t.kind {
            Tok::LParen => {
                self.nest(t.start)?;
                let n = self.or()?;
                self.depth -= 1;
                self.expect(Tok::RParen, "')'")?;
                Ok(n)
            }
            Tok::Word => self.word(t),
            _ => Err(self.error(t.start, format!("expected a condition ({FIELDS}), found '{}'", t.text))),
        }
    }

    fn word(&mut self, t: Token<'a>) -> Result<Node> {
        let Some(kw) = keyword(t.text) else {
            return Err(self.error(t.start, format!("unknown field '{}' (expected one of: {FIELDS})", t.text)));
        };
        let leaf = |p: Predicate, end: usize| Node::Leaf(p, (t.start, end));
        match kw {
            "any" | "all" => {
                if self.quantified > 0 {
                    return Err(self.error(
                        t.start,
                        format!("'{kw}(...)' cannot be nested: it already ranges over the household's members"),
                    ));
                }
                let open = self.expect(Tok::LParen, "'(' after any/all")?;
                self.nest(open.start)?;
                self.quantified += 1;
                let inner = self.or()?;
                self.quantified -= 1;
                self.depth -= 1;
                let close = self.expect(Tok::RParen, "')'")?;
                let span = (t.start, close.end);
                Ok(if kw == "any" { Node::Any(Box::new(inner), span) } else { Node::All(Box::new(inner), span) })
            }
            "true" => Ok(leaf(Predicate::True, t.end)),
            "poor" => Ok(leaf(Predicate::Poor, t.end)),
            "target" => Ok(leaf(Predicate::Target, t.end)),
            "disabled" => {
                self.personal(&t)?;
                Ok(leaf(Predicate::Disabled, t.end))
            }
            "deprived" | "dimension" => {
                self.expect(Tok::LParen, &format!("'(' after {kw}"))?;
                let arg = self.expect(Tok::Word, if kw == "deprived" { "an indicator code" } else { "a dimension" })?;
                let close = self.expect(Tok::RParen, "')'")?;
                if kw == "deprived" {
                    let i = self.edition.find(arg.text).ok_or_else(|| {
                        self.error(arg.start, format!("no indicator '{}' in edition {}", arg.text, self.edition.id))
                    })?;
                    Ok(leaf(Predicate::Deprived(i, self.edition.indicator(i).label()), close.end))
                } else {
                    let d = dimension(arg.text).ok_or_else(|| {
                        self.error(
                            arg.start,
                            format!("unknown dimension '{}' (health, living, education, income, access)", arg.text),
                        )
                    })?;
                    Ok(leaf(Predicate::Dimension(d), close.end))
                }
            }
            "age" | "sex" | "welfare" | "members" | "income" | "score" | "deprivations" | "province" | "amphoe"
            | "tambon" | "village" | "area" => self.comparison(kw, t),
            _ => Err(self.error(t.start, format!("'{}' cannot start a condition", t.text))),
        }
    }

    fn personal(&self, t: &Token<'a>) -> Result<()> {
        if self.unit == Unit::Households && self.quantified == 0 {
            return Err(self.error(
                t.start,
                format!(
                    "'{}' is a fact about a person: in a household program write any({} ...) for some member or all(...) for every member",
                    t.text, t.text
                ),
            ));
        }
        Ok(())
    }

    fn comparison(&mut self, kw: &'static str, t: Token<'a>) -> Result<Node> {
        if matches!(kw, "age" | "sex" | "welfare") {
            self.personal(&t)?;
        }
        let op_tok = self.next("a comparison (=, !=, <, <=, >, >= or in)")?;
        let is_area = matches!(kw, "province" | "amphoe" | "tambon" | "village" | "area");
        if op_tok.kind == Tok::Word && keyword(op_tok.text) == Some("in") {
            if !is_area {
                return Err(self.error(op_tok.start, format!("'in (...)' works with area fields, not '{kw}'")));
            }
            self.expect(Tok::LParen, "'(' after in")?;
            let mut codes = Vec::new();
            loop {
                let v = self.expect(Tok::Word, "an area code")?;
                codes.push(self.area_code(kw, &v)?);
                let sep = self.next("',' or ')'")?;
                match sep.kind {
                    Tok::Comma => continue,
                    Tok::RParen => return Ok(Node::Leaf(Predicate::Area(true, codes), (t.start, sep.end))),
                    _ => return Err(self.error(sep.start, format!("expected ',' or ')', found '{}'", sep.text))),
                }
            }
        }
        let Tok::Op(op) = op_tok.kind else {
            return Err(self.error(
                op_tok.start,
                format!("expected =, !=, <, <=, >, >= after '{}', found '{}'", t.text, op_tok.text),
            ));
        };
        let v = self.expect(Tok::Word, "a value")?;
        let span = (t.start, v.end);
        let eq_only = |s: &Self| -> Result<bool> {
            match op {
                Cmp::Eq => Ok(true),
                Cmp::Ne => Ok(false),
                _ => Err(s.error(op_tok.start, format!("'{kw}' can only be compared with = or !="))),
            }
        };
        let int = |s: &Self| -> Result<u32> {
            crate::thai::fold_digits(v.text)
                .parse::<u32>()
                .map_err(|_| s.error(v.start, format!("'{kw}' needs a whole number, not '{}'", v.text)))
        };
        let p = match kw {
            "age" => Predicate::Age(op, int(self)?),
            "members" => Predicate::Members(op, int(self)?),
            "deprivations" => Predicate::Deprivations(op, int(self)?),
            "income" => {
                let x: f64 = crate::thai::fold_digits(v.text)
                    .replace(',', "")
                    .parse()
                    .map_err(|_| self.error(v.start, format!("'income' needs a number of baht, not '{}'", v.text)))?;
                Predicate::Income(op, x)
            }
            "score" => {
                let r: Rational = crate::thai::fold_digits(v.text).parse().map_err(|_| {
                    self.error(
                        v.start,
                        format!("'score' needs a fraction, decimal or percent (1/3, 0.25, 40%), not '{}'", v.text),
                    )
                })?;
                Predicate::Score(op, r)
            }
            "sex" => {
                let eq = eq_only(self)?;
                let s = match v.text.to_ascii_lowercase().as_str() {
                    "male" | "m" | "ชาย" => Sex::Male,
                    "female" | "f" | "หญิง" => Sex::Female,
                    _ => return Err(self.error(v.start, format!("sex is male or female (ชาย/หญิง), not '{}'", v.text))),
                };
                Predicate::Sex(eq, s)
            }
            "welfare" => {
                let eq = eq_only(self)?;
                let w = match v.text.to_ascii_lowercase().as_str() {
                    "none" | "no" | "ไม่มี" => WelfareState::None,
                    "registered" | "ลงทะเบียน" => WelfareState::Registered,
                    "validated" | "ผ่านการตรวจสอบ" => WelfareState::Validated,
                    _ => {
                        return Err(
                            self.error(v.start, format!("welfare is none, registered or validated, not '{}'", v.text))
                        );
                    }
                };
                Predicate::Welfare(eq, w)
            }
            _ => {
                let eq = eq_only(self)?;
                Predicate::Area(eq, vec![self.area_code(kw, &v)?])
            }
        };
        Ok(Node::Leaf(p, span))
    }

    fn area_code(&self, kw: &str, v: &Token<'a>) -> Result<AreaCode> {
        let code = AreaCode::parse(v.text).map_err(|e| self.error(v.start, e.to_string()))?;
        let want = match kw {
            "province" => Some(2),
            "amphoe" => Some(4),
            "tambon" => Some(6),
            "village" => Some(10),
            _ => None,
        };
        if let Some(n) = want
            && code.as_str().len() != n
        {
            return Err(
                self.error(v.start, format!("a {kw} code has {n} digits, '{}' has {}", v.text, code.as_str().len()))
            );
        }
        Ok(code)
    }
}

fn dimension(s: &str) -> Option<Dimension> {
    Dimension::ALL.into_iter().find(|d| d.name() == s.to_ascii_lowercase() || d.name_th() == s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::IndicatorStatus as S;

    /// Two households: 0 has persons 0..3, 1 has persons 3..4 with most facts missing.
    struct Mock {
        village: [AreaCode; 2],
    }

    impl Mock {
        fn new() -> Self {
            Mock { village: [AreaCode::parse("4001020101").unwrap(), AreaCode::parse("5004060901").unwrap()] }
        }
    }

    const AGE: [Option<u8>; 4] = [Some(67), Some(35), Some(4), None];
    const SEX: [Sex; 4] = [Sex::Female, Sex::Male, Sex::Female, Sex::Unknown];
    const DISABLED: [Option<bool>; 4] = [Some(true), Some(false), Some(false), None];
    const WELFARE: [(Option<bool>, Option<bool>); 4] =
        [(Some(true), Some(true)), (Some(true), Some(false)), (Some(false), Some(false)), (None, None)];

    impl Facts for Mock {
        fn members(&self, h: usize) -> std::ops::Range<usize> {
            if h == 0 { 0..3 } else { 3..4 }
        }
        fn age(&self, p: usize) -> Option<u8> {
            AGE[p]
        }
        fn sex(&self, p: usize) -> Sex {
            SEX[p]
        }
        fn disabled(&self, p: usize) -> Option<bool> {
            DISABLED[p]
        }
        fn welfare(&self, p: usize) -> (Option<bool>, Option<bool>) {
            WELFARE[p]
        }
        fn household_size(&self, h: usize) -> u32 {
            if h == 0 { 3 } else { 1 }
        }
        fn income(&self, h: usize) -> Option<f64> {
            if h == 0 { Some(35_000.0) } else { None }
        }
        fn score(&self, h: usize) -> Option<(u64, u64)> {
            // Household 0 scores exactly 2/17.
            if h == 0 { Some((2, 17)) } else { None }
        }
        fn counted(&self, h: usize) -> Option<u64> {
            if h == 0 { Some(0b1_0000_0000 | 1 << 21) } else { None } // bits 8 (2.1) and 21 (4.3)
        }
        fn dimension_mask(&self, d: Dimension) -> u64 {
            match d {
                Dimension::Living => 0b1111 << 7,
                Dimension::Income => 0b111 << 19,
                _ => 0,
            }
        }
        fn household_status(&self, h: usize, i: usize) -> Option<IndicatorStatus> {
            match (h, i) {
                (0, 7) => Some(S::Fail),
                (0, 21) => Some(S::Fail),
                (0, 14) => Some(S::NotApplicable),
                (1, _) => Some(S::Missing),
                _ => Some(S::Pass),
            }
        }
        fn person_status(&self, p: usize, i: usize) -> Option<IndicatorStatus> {
            match (p, i) {
                (1, 19) => Some(S::Fail),
                (3, _) => Some(S::Missing),
                _ => Some(S::Pass),
            }
        }
        fn poor(&self, h: usize) -> bool {
            h == 0
        }
        fn target(&self, _h: usize) -> bool {
            false
        }
        fn village(&self, h: usize) -> &AreaCode {
            &self.village[h]
        }
        fn person_level(&self, i: usize) -> bool {
            i == 19
        }
    }

    fn hh(text: &str) -> Rule {
        Rule::parse(text, &Edition::bmn_2560(), Unit::Households).unwrap_or_else(|e| panic!("{text}: {e}"))
    }
    fn person(text: &str) -> Rule {
        Rule::parse(text, &Edition::bmn_2560(), Unit::People).unwrap_or_else(|e| panic!("{text}: {e}"))
    }
    use Outcome::{Fail, Pass, Unknown};

    #[test]
    fn every_predicate_passes_fails_and_is_unknown_on_missing_data() {
        let m = Mock::new();
        // (rule, household 0, household 1) — household 1 has no income, score or statuses.
        let cases: &[(&str, Outcome, Outcome)] = &[
            ("members >= 3", Pass, Fail),
            ("members = 1", Fail, Pass),
            ("income < 40000", Pass, Unknown),
            ("income >= 40000.0", Fail, Unknown),
            ("score >= 2/17", Pass, Unknown),
            ("score > 2/17", Fail, Unknown),
            ("score >= 0.1176470588235294", Pass, Unknown), // 2/17 = 0.11764705882352941…: exact, not float
            ("score >= 11.77%", Fail, Unknown),
            ("deprivations = 2", Pass, Unknown),
            ("deprived(2.1)", Pass, Unknown),
            ("deprived(2.2)", Fail, Unknown),
            ("deprived(bmn15)", Fail, Unknown), // not applicable is not deprived
            ("dimension(income)", Pass, Unknown),
            ("dimension(health)", Fail, Unknown),
            ("มิติ(รายได้)", Pass, Unknown),
            ("poor", Pass, Fail),
            ("target", Fail, Fail),
            ("province = 40", Pass, Fail),
            ("amphoe != 4001", Fail, Pass),
            ("area in (50, 4002)", Fail, Pass),
            ("village = 4001020101", Pass, Fail),
            ("tambon in (400102, 500406)", Pass, Pass),
            ("true", Pass, Pass),
            ("any(age >= 60)", Pass, Unknown),
            ("all(age >= 60)", Fail, Unknown),
            ("any(sex = female)", Pass, Unknown),
            ("all(sex != male)", Fail, Unknown),
            ("any(disabled)", Pass, Unknown),
            ("any(welfare = validated)", Pass, Unknown),
            ("any(welfare = registered)", Pass, Unknown),
            ("all(welfare = registered)", Fail, Unknown),
            ("any(welfare = none)", Pass, Unknown),
            ("any(deprived(4.1))", Pass, Unknown), // person 1's own status for a person-level indicator
        ];
        for &(text, want0, want1) in cases {
            let r = hh(text);
            assert_eq!(r.eval(&m, 0, None), want0, "{text} on household 0");
            assert_eq!(r.eval(&m, 1, None), want1, "{text} on household 1");
            // The explanation agrees with the evaluation and has a line per condition.
            let (o, reasons) = r.explain(&m, 0, None);
            assert_eq!(o, want0, "{text}: explain");
            assert!(!reasons.is_empty());
        }
    }

    #[test]
    fn person_predicates_read_the_person() {
        let m = Mock::new();
        let r = person("age >= 60 and disabled");
        assert_eq!(r.eval(&m, 0, Some(0)), Pass);
        assert_eq!(r.eval(&m, 0, Some(1)), Fail);
        assert_eq!(r.eval(&m, 1, Some(3)), Unknown);
        let own = person("deprived(4.1)");
        assert_eq!(own.eval(&m, 0, Some(1)), Pass);
        assert_eq!(own.eval(&m, 0, Some(0)), Fail);
        assert_eq!(person("sex = ชาย").eval(&m, 0, Some(1)), Pass);
        // A caller evaluating a person rule without a person gets unknown, not a panic.
        assert_eq!(person("age >= 60").eval(&m, 0, None), Unknown);
        assert_eq!(person("disabled or members >= 3").eval(&m, 0, None), Pass);
        assert_eq!(person("sex = female").eval(&m, 1, Some(3)), Unknown);
    }

    #[test]
    fn kleene_logic_with_unknowns() {
        let m = Mock::new();
        // Household 1: income unknown, members = 1.
        assert_eq!(hh("income < 1 and members = 2").eval(&m, 1, None), Fail); // unknown and fail
        assert_eq!(hh("income < 1 and members = 1").eval(&m, 1, None), Unknown); // unknown and pass
        assert_eq!(hh("income < 1 or members = 1").eval(&m, 1, None), Pass); // unknown or pass
        assert_eq!(hh("income < 1 or members = 2").eval(&m, 1, None), Unknown); // unknown or fail
        assert_eq!(hh("not income < 1").eval(&m, 1, None), Unknown);
        assert_eq!(hh("not members = 2").eval(&m, 1, None), Pass);
        assert_eq!(hh("members = 3 หรือ members = 1 และ poor").eval(&m, 1, None), Fail, "and binds tighter than or");
        assert_eq!(hh("(members = 3 or members = 1) and not poor").eval(&m, 1, None), Pass);
    }

    #[test]
    fn explanations_name_each_condition_and_its_facts() {
        let m = Mock::new();
        let r = hh("deprived(2.1) and any(age >= 60 and disabled) and income < 30000");
        let (o, why) = r.explain(&m, 0, None);
        assert_eq!(o, Fail);
        let text: Vec<String> = why.iter().map(|r| r.to_string()).collect();
        let joined = text.join("\n");
        assert!(joined.contains("✓ deprived(2.1) — fails"), "{joined}");
        assert!(
            joined.contains("any(age >= 60 and disabled)") && joined.contains("3 members: 1 pass, 2 fail, 0 unknown"),
            "{joined}"
        );
        assert!(joined.contains("member 1 of 3"), "{joined}");
        assert!(joined.contains("✓ age >= 60") && joined.contains("age 67"), "{joined}");
        assert!(joined.contains("✗ income < 30000 — income 35000 baht per member per year"), "{joined}");
        let (o, why) = r.explain(&m, 1, None);
        assert_eq!(o, Unknown);
        assert!(why.iter().any(|r| r.facts == "income not reported" && r.outcome == Unknown));
    }

    #[test]
    fn parse_errors_point_at_the_column() {
        let e = Edition::bmn_2560();
        let err = |t: &str, unit: Unit| Rule::parse(t, &e, unit).unwrap_err();
        let col = |er: Error| match er {
            Error::Rule { column, message, .. } => (column, message),
            other => panic!("{other}"),
        };
        let cases: &[(&str, Unit, usize, &str)] = &[
            ("agee >= 60", Unit::People, 1, "unknown field 'agee'"),
            ("age >= sixty", Unit::People, 8, "whole number"),
            ("age >= 60 and", Unit::People, 14, "ends where a condition"),
            ("(age >= 60", Unit::People, 11, "')'"),
            ("age >= 60)", Unit::People, 10, "unexpected ')'"),
            ("deprived(9.9)", Unit::Households, 10, "no indicator '9.9'"),
            ("dimension(wealth)", Unit::Households, 11, "unknown dimension"),
            ("province = 4001", Unit::Households, 12, "2 digits"),
            ("province = 401", Unit::Households, 12, "2, 4, 6, 8 or 10"),
            ("sex > male", Unit::People, 5, "only be compared with = or !="),
            ("age in (1, 2)", Unit::People, 5, "area fields"),
            ("age >= 60", Unit::Households, 1, "any(age"),
            ("any(any(age > 1))", Unit::Households, 5, "cannot be nested"),
            ("อายุ >= 60 และ พิการร", Unit::People, 16, "unknown field 'พิการร'"),
            ("age ! 60", Unit::People, 5, "'!' must be followed"),
            ("welfare = maybe", Unit::People, 11, "none, registered or validated"),
        ];
        for &(text, unit, want_col, want_msg) in cases {
            let (c, m) = col(err(text, unit));
            assert_eq!(c, want_col, "{text}: {m}");
            assert!(m.contains(want_msg), "{text}: {m}");
        }
        let shown = err("age >= 60 and agee < 3", Unit::People).to_string();
        assert!(shown.ends_with("age >= 60 and agee < 3\n                  ^"), "{shown}");
    }

    #[test]
    fn canonical_text_round_trips() {
        for t in [
            "deprived(2.1) and any(age >= 60 or disabled) and income < 40000",
            "not (poor or target) and area in (40, 5004)",
            "score >= 1/3 or deprivations > 2",
        ] {
            let r = hh(t);
            let again = hh(&r.to_string());
            assert_eq!(r.root, again.root, "{t} -> {r}");
        }
        assert_eq!(hh("").eval(&Mock::new(), 1, None), Pass, "an empty rule admits everyone in need");
        assert_eq!(hh("deprived(2.1) or deprived(1.3)").indicators(), (1 << 7) | (1 << 4));
    }
}
