//! The persons half of ingest: one row of the persons table to a person of an accepted
//! household, or to a rejection; scopes derive not-applicable statuses, birth dates derive ages.

use super::*;

#[derive(Default)]
pub(super) struct PersonBuilder {
    pub(super) persons: Persons,
    pub(super) rejects: Vec<Rejection>,
    pub(super) notes: Notes,
    /// Position in the household index of the previous row's household: persons arrive grouped
    /// by household, so the next lookup is usually that entry or the one after it, and a binary
    /// search over millions of households (a cache miss per step) is avoided.
    pub(super) hint: usize,
}

impl PersonBuilder {
    pub(super) fn new(present: u64) -> Self {
        let mut b = PersonBuilder::default();
        b.persons.statuses.present = present;
        b
    }
    /// An empty part with room for a chunk of `rows` rows and the text of its names (`pre`'s
    /// cells of the columns of `map`): a part grown from nothing doubled every column a dozen
    /// times over a chunk of 8192 rows.
    pub(super) fn for_chunk(rows: usize, pre: &Chunk<'_>, map: &ColumnMap<PF>) -> Self {
        let mut b = PersonBuilder::default();
        let p = &mut b.persons;
        p.reserve(rows);
        p.title.reserve_text(pre.cells.text_bytes(map.get(PF::Title)));
        p.first_name.reserve_text(pre.cells.text_bytes(map.get(PF::FirstName)));
        p.last_name.reserve_text(pre.cells.text_bytes(map.get(PF::LastName)));
        b
    }
    /// Makes room for the rows of `incoming` in one step when they would not fit (see
    /// `room_for`), and for the text of the rows to come once real names show its length.
    pub(super) fn make_room(&mut self, incoming: &PersonBuilder, claimed: Option<usize>) {
        let room = room_for(self.len(), self.persons.household.capacity(), incoming.len(), claimed);
        if room > 0 {
            self.persons.reserve(room);
        }
        let to_come = room_for(self.len(), self.len(), incoming.len(), claimed);
        let (p, i) = (&mut self.persons, &incoming.persons);
        p.title.make_room(&i.title, to_come);
        p.first_name.make_room(&i.first_name, to_come);
        p.last_name.make_room(&i.last_name, to_come);
    }
}

impl Part for PersonBuilder {
    fn len(&self) -> usize {
        self.persons.household.len()
    }
    fn source_rows(&self) -> &[u64] {
        &self.persons.source_row
    }
    fn filter(self, keep: &[bool]) -> Self {
        let idx: Vec<u32> = (0..keep.len() as u32).filter(|&i| keep[i as usize]).collect();
        PersonBuilder { persons: self.persons.take(&idx), rejects: self.rejects, notes: self.notes, hint: self.hint }
    }
    fn rejects_mut(&mut self) -> &mut Vec<Rejection> {
        &mut self.rejects
    }
}

impl PersonBuilder {
    /// Appends `parts` in order, their columns on every core ([`Persons::append_all`]).
    pub(super) fn append_all(&mut self, parts: Vec<PersonBuilder>) {
        let mut persons = Vec::with_capacity(parts.len());
        for o in parts {
            self.rejects.extend(o.rejects);
            self.notes.derived_not_applicable += o.notes.derived_not_applicable;
            self.notes.reported_na_in_scope_as_missing += o.notes.reported_na_in_scope_as_missing;
            self.notes.ages_derived += o.notes.ages_derived;
            persons.push(o.persons);
        }
        self.persons.append_all(persons);
    }
}

pub(super) struct PersonCtx<'a> {
    pub(super) header: &'a [String],
    pub(super) map: &'a ColumnMap<PF>,
    pub(super) opts: &'a IngestOptions,
    pub(super) index: &'a [(u64, u32)],
    pub(super) rejected_ids: &'a [u64],
    pub(super) survey_year: &'a [u16],
    /// By [`scope_key`]: the person-level indicators whose scope a person of that age and
    /// disability is outside of, and inside of (bits); the others' scopes cannot be decided.
    /// A row's statuses are then corrected with a few word operations instead of a scope match
    /// per indicator.
    scope_masks: Vec<(u64, u64)>,
    pub(super) present: u64,
}

/// Index of an age (`None` after every `u8`) and a disability flag in [`PersonCtx`]'s masks.
fn scope_key(age: Option<u8>, disabled: Option<bool>) -> usize {
    let a = age.map_or(256, usize::from);
    let d = match disabled {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    };
    a * 3 + d
}

impl<'a> PersonCtx<'a> {
    pub(super) fn new(
        map: &'a ColumnMap<PF>,
        header: &'a [String],
        opts: &'a IngestOptions,
        index: &'a [(u64, u32)],
        rejected_ids: &'a [u64],
        survey_year: &'a [u16],
    ) -> Self {
        // (indicator, scope) for person-level statuses whose scope can be derived.
        let scopes: Vec<(usize, Scope)> = map
            .indicators
            .iter()
            .map(|&(i, _)| (i, opts.edition.indicator(i).scope))
            .filter(|(_, s)| !matches!(s, Scope::Household | Scope::M3Leaver | Scope::Reported))
            .collect();
        let ages = (0..=u8::MAX).map(Some).chain([None]);
        let mut scope_masks = vec![(0u64, 0u64); 257 * 3];
        for age in ages {
            for disabled in [None, Some(false), Some(true)] {
                let (mut outside, mut inside) = (0u64, 0u64);
                for &(i, scope) in &scopes {
                    match scope.applies_to(age, disabled) {
                        Some(false) => outside |= 1 << i,
                        Some(true) => inside |= 1 << i,
                        None => {}
                    }
                }
                scope_masks[scope_key(age, disabled)] = (outside, inside);
            }
        }
        PersonCtx { header, map, opts, index, rejected_ids, survey_year, scope_masks, present: map.indicator_mask() }
    }

    /// Finds a household in the index, trying the previous row's entry and its successor first.
    pub(super) fn lookup(&self, id: u64, hint: &mut usize) -> std::result::Result<usize, usize> {
        let idx = self.index;
        for pos in [*hint, *hint + 1] {
            if idx.get(pos).is_some_and(|e| e.0 == id) {
                *hint = pos;
                return Ok(pos);
            }
        }
        let found = idx.binary_search_by_key(&id, |&(k, _)| k);
        if let Ok(pos) = found {
            *hint = pos;
        }
        found
    }

    /// Appends a text cell (by `push`, to a text or a dictionary column) without allocating for
    /// the common case of a string cell.
    fn push_text(push: impl FnOnce(&str), cell: Cell<'_>) {
        match cell {
            Cell::Null => push(""),
            Cell::Str(s) => push(parse::trim_text(s)),
            c => push(parse::trim_text(&c.to_text())),
        }
    }

    pub(super) fn row(
        &self,
        b: &dyn Batch,
        r: usize,
        row: u64,
        Chunk { statuses: pre, cells }: &Chunk<'_>,
        out: &mut PersonBuilder,
    ) {
        if out.persons.statuses.present == 0 {
            out.persons.statuses.present = self.present;
        }
        let m = self.map;
        let mut pr = RowProblems::new(self.header);
        pr.check_shape(b, r);
        let hh_col = m.get(PF::HouseholdId).expect("required");
        let household = match cells.get(r, hh_col) {
            Cell::Null => {
                pr.add(hh_col, Reason::MissingValue);
                None
            }
            c => {
                let id = match c {
                    Cell::Int(i) if i >= 0 => Some(HouseholdId(i as u64)),
                    c => c.as_text().parse::<HouseholdId>().ok(),
                };
                match id {
                    None => {
                        pr.add(hh_col, Reason::BadHouseholdId);
                        None
                    }
                    Some(id) => match self.lookup(id.0, &mut out.hint) {
                        Ok(pos) => Some(self.index[pos].1),
                        Err(_) if self.rejected_ids.binary_search(&id.0).is_ok() => {
                            pr.add(hh_col, Reason::HouseholdRejected);
                            None
                        }
                        Err(_) => {
                            pr.add(hh_col, Reason::PersonWithoutHousehold);
                            None
                        }
                    },
                }
            }
        };
        let citizen_id = match m.get(PF::CitizenId).map(|c| (c, cells.get(r, c))) {
            None | Some((_, Cell::Null)) => None,
            Some((c, cell)) => {
                let parsed = match cell {
                    Cell::Int(i) if i >= 0 => CitizenId::from_u64(i as u64),
                    Cell::Str(s) => CitizenId::parse(s),
                    _ => Err(IdError::NotDigits),
                };
                match parsed {
                    Ok(id) => Some(id),
                    Err(IdError::CheckDigit) => {
                        pr.add(c, Reason::BadCheckDigit);
                        None
                    }
                    Err(_) => {
                        pr.add(c, Reason::BadCitizenId);
                        None
                    }
                }
            }
        };
        let sex = m.get(PF::Sex).map_or(Ok(Sex::Unknown), |c| parse::sex(cells.get(r, c))).unwrap_or_else(|reason| {
            pr.add(m.get(PF::Sex).expect("present"), reason);
            Sex::Unknown
        });
        let relation = m
            .get(PF::Relation)
            .map_or(Ok(Relation::Unknown), |c| parse::relation(cells.get(r, c)))
            .unwrap_or_else(|reason| {
                pr.add(m.get(PF::Relation).expect("present"), reason);
                Relation::Unknown
            });
        let mut flag = |f: PF| match m.get(f) {
            Some(c) => parse::flag(cells.get(r, c)).unwrap_or_else(|reason| {
                pr.add(c, reason);
                None
            }),
            None => None,
        };
        let disabled = flag(PF::Disabled);
        let registered = flag(PF::WelfareRegistered);
        let validated = flag(PF::WelfareValidated);
        let birth = match m.get(PF::BirthDate) {
            Some(c) => parse::date(cells.get(r, c)).unwrap_or_else(|reason| {
                pr.add(c, reason);
                None
            }),
            None => None,
        };
        let given_age = match m.get(PF::Age) {
            Some(c) => match parse::whole(cells.get(r, c)) {
                Ok(Some(a)) if a <= 120 => Some(a as i32),
                Ok(Some(_)) => {
                    pr.add(c, Reason::ImpossibleAge);
                    None
                }
                Ok(None) => None,
                Err(_) => {
                    pr.add(c, Reason::BadNumber);
                    None
                }
            },
            None => None,
        };
        // Age on the reference day of the household's survey year.
        let mut age = given_age;
        let mut derived = false;
        if let (Some(h), Some(bd)) = (household, birth) {
            let be = self.survey_year[h as usize];
            let (month, day) = self.opts.reference_day;
            let on = PartialDate { year: be - 543, month, day };
            let d = bd.age_on(on);
            let col = m.get(PF::BirthDate).expect("birth implies column");
            if !(0..=120).contains(&d) {
                pr.add(col, Reason::ImpossibleAge);
            } else if let Some(g) = given_age {
                if (g - d).abs() > 1 {
                    pr.add(m.get(PF::Age).expect("given"), Reason::AgeBirthMismatch);
                }
            } else {
                age = Some(d);
                derived = true;
            }
        }
        let (mut fail, mut na, mut missing) = read_statuses(b, r, &m.indicators, self.opts.one_means, pre, &mut pr);

        if !pr.problems.is_empty() {
            out.rejects.push(pr.into_rejection(b, r, row));
            return;
        }
        let age = age.map(|a| a as u8);
        // Outside an indicator's scope: not applicable, whatever was reported. Inside it but
        // reported not applicable: missing.
        let (outside, inside) = self.scope_masks[scope_key(age, disabled)];
        let made_na = outside & !na;
        na |= made_na;
        fail &= !made_na;
        missing &= !made_na;
        out.notes.derived_not_applicable += u64::from(made_na.count_ones());
        let made_missing = inside & na;
        na &= !made_missing;
        missing |= made_missing;
        out.notes.reported_na_in_scope_as_missing += u64::from(made_missing.count_ones());
        if derived {
            out.notes.ages_derived += 1;
        }
        let p = &mut out.persons;
        p.household.push(household.expect("no problems"));
        p.citizen_id.push(citizen_id);
        Self::push_text(|s| p.title.push(s), cells.at(r, m.get(PF::Title)));
        Self::push_text(|s| p.first_name.push(s), cells.at(r, m.get(PF::FirstName)));
        Self::push_text(|s| p.last_name.push(s), cells.at(r, m.get(PF::LastName)));
        p.sex.push(sex);
        p.birth_date.push(birth);
        p.age.push(age);
        p.relation.push(relation);
        p.disabled.push(disabled);
        p.welfare_registered.push(registered);
        p.welfare_validated.push(validated);
        p.statuses.push(fail, na, missing);
        p.source_row.push(row);
    }
}
