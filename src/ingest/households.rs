//! The households half of ingest: one row of the households table to a household, or to a
//! rejection with every problem found.

use super::*;

#[derive(Default)]
pub(super) struct HouseholdBuilder {
    pub(super) households: Households,
    pub(super) members_given: Vec<Option<u16>>,
    pub(super) rejects: Vec<Rejection>,
    pub(super) rejected_ids: Vec<u64>,
    pub(super) notes: Notes,
    /// The last village code checked against the registry and the answer: households come
    /// village by village, and four hash lookups a row were 2 % of a national run (perf).
    last_area: Option<(AreaCode, Result<(), UnknownArea>)>,
}

impl HouseholdBuilder {
    pub(super) fn new(present: u64) -> Self {
        let mut b = HouseholdBuilder::default();
        b.households.statuses.present = present;
        b
    }
    /// An empty part with room for a chunk of `rows` rows and the text of their house numbers
    /// (`pre`'s cells of the column of `map`), as [`PersonBuilder::for_chunk`].
    pub(super) fn for_chunk(rows: usize, pre: &Chunk<'_>, map: &ColumnMap<HF>) -> Self {
        let mut b = HouseholdBuilder::default();
        b.households.reserve(rows);
        b.members_given.reserve(rows);
        b.households.house_no.reserve_text(pre.cells.text_bytes(map.get(HF::HouseNo)));
        b
    }
    /// Makes room for the rows of `incoming` in one step when they would not fit (see
    /// `room_for`), and for the house numbers to come once real ones show their length.
    pub(super) fn make_room(&mut self, incoming: &HouseholdBuilder, claimed: Option<usize>) {
        let room = room_for(self.len(), self.households.id.capacity(), incoming.len(), claimed);
        if room > 0 {
            self.households.reserve(room);
            self.members_given.reserve(room);
        }
        let to_come = room_for(self.len(), self.len(), incoming.len(), claimed);
        self.households.house_no.make_room(&incoming.households.house_no, to_come);
    }
}

impl HouseholdBuilder {
    /// Appends `parts` in order, their columns on every core ([`Households::append_all`]).
    pub(super) fn append_all(&mut self, parts: Vec<HouseholdBuilder>) {
        let mut households = Vec::with_capacity(parts.len());
        let mut members = Vec::with_capacity(parts.len());
        for o in parts {
            self.rejects.extend(o.rejects);
            self.rejected_ids.extend(o.rejected_ids);
            self.notes.income_status_derived += o.notes.income_status_derived;
            self.notes.income_status_overruled += o.notes.income_status_overruled;
            households.push(o.households);
            members.push(o.members_given);
        }
        let given = &mut self.members_given;
        rayon::join(
            || self.households.append_all(households),
            || members.iter().for_each(|m| given.extend_from_slice(m)),
        );
    }
}

impl Part for HouseholdBuilder {
    fn len(&self) -> usize {
        self.households.id.len()
    }
    fn source_rows(&self) -> &[u64] {
        &self.households.source_row
    }
    fn filter(self, keep: &[bool]) -> Self {
        let idx: Vec<u32> = (0..keep.len() as u32).filter(|&i| keep[i as usize]).collect();
        let mut households = self.households.take(&idx);
        // Counted from the persons later.
        households.members = Vec::new();
        HouseholdBuilder {
            households,
            members_given: idx.iter().map(|&i| self.members_given[i as usize]).collect(),
            rejects: self.rejects,
            rejected_ids: self.rejected_ids,
            notes: self.notes,
            last_area: self.last_area,
        }
    }
    fn rejects_mut(&mut self) -> &mut Vec<Rejection> {
        &mut self.rejects
    }
}

pub(super) struct HouseholdCtx<'a> {
    pub(super) header: &'a [String],
    pub(super) map: &'a ColumnMap<HF>,
    pub(super) opts: &'a IngestOptions,
    pub(super) registry: &'a AreaRegistry,
    /// (indicator, threshold) for income indicators derivable from income per member.
    pub(super) income: Option<(usize, f64)>,
    pub(super) statuses_present: u64,
}

/// A village code from its cell; text is parsed in place (this runs for every household).
fn parse_village(c: Cell<'_>) -> crate::error::Result<AreaCode> {
    match c {
        Cell::Str(s) => AreaCode::parse(s),
        c => AreaCode::parse(&c.to_text()),
    }
}

impl<'a> HouseholdCtx<'a> {
    pub(super) fn new(
        map: &'a ColumnMap<HF>,
        header: &'a [String],
        opts: &'a IngestOptions,
        registry: &'a AreaRegistry,
    ) -> Self {
        let income = map.get(HF::IncomePerMember).and_then(|_| {
            opts.edition
                .indicators()
                .iter()
                .position(|i| i.level == RecordedFor::Household && i.income_threshold.is_some())
                .map(|i| (i, opts.edition.indicator(i).income_threshold.expect("checked")))
        });
        let statuses_present = map.indicator_mask() | income.map_or(0, |(i, _)| 1u64 << i);
        HouseholdCtx { header, map, opts, registry, income, statuses_present }
    }

    pub(super) fn row(
        &self,
        b: &dyn Batch,
        r: usize,
        row: u64,
        Chunk { statuses: pre, cells }: &Chunk<'_>,
        out: &mut HouseholdBuilder,
    ) {
        if out.households.statuses.present == 0 {
            out.households.statuses.present = self.statuses_present;
        }
        let m = self.map;
        let mut pr = RowProblems::new(self.header);
        pr.check_shape(b, r);
        let id_col = m.get(HF::HouseholdId).expect("required");
        let id = match cells.get(r, id_col) {
            Cell::Null => {
                pr.add(id_col, Reason::MissingValue);
                None
            }
            Cell::Int(i) if i >= 0 => Some(HouseholdId(i as u64)),
            c => match c.as_text().parse::<HouseholdId>() {
                Ok(id) => Some(id),
                Err(_) => {
                    pr.add(id_col, Reason::BadHouseholdId);
                    None
                }
            },
        };
        let v_col = m.get(HF::Village).expect("required");
        let village = match cells.get(r, v_col) {
            Cell::Null => {
                pr.add(v_col, Reason::MissingValue);
                None
            }
            c => match parse_village(c) {
                Ok(code) if code.level() < crate::areas::AreaLevel::Village => {
                    pr.add(v_col, Reason::BadAreaCode);
                    None
                }
                Ok(code) => {
                    let check = match out.last_area {
                        Some((last, answer)) if last == code => answer,
                        _ => {
                            let answer = match self.opts.area_check {
                                AreaCheck::Village => self.registry.check(&code),
                                AreaCheck::Tambon => self.registry.check_tambon(&code),
                                AreaCheck::FormOnly => Ok(()),
                            };
                            out.last_area = Some((code, answer));
                            answer
                        }
                    };
                    match check {
                        Ok(()) => Some(code),
                        Err(u) => {
                            pr.add(
                                v_col,
                                match u {
                                    UnknownArea::Province => Reason::UnknownProvince,
                                    UnknownArea::Amphoe => Reason::UnknownAmphoe,
                                    UnknownArea::Tambon => Reason::UnknownTambon,
                                    UnknownArea::Village => Reason::UnknownVillage,
                                },
                            );
                            None
                        }
                    }
                }
                Err(_) => {
                    pr.add(v_col, Reason::BadAreaCode);
                    None
                }
            },
        };
        let house_id = match m.get(HF::HouseId).map(|c| (c, cells.get(r, c))) {
            None | Some((_, Cell::Null)) => None,
            Some((c, cell)) => {
                // A text cell parsed in place: no String per household.
                let parsed = match cell {
                    Cell::Str(s) => s.parse::<HouseId>(),
                    other => other.to_text().parse::<HouseId>(),
                };
                parsed.map_err(|_| pr.add(c, Reason::BadHouseId)).ok()
            }
        };
        if let Some(c) = m.get(HF::HouseNo) {
            let long_number = match cells.get(r, c) {
                Cell::Null => false,
                Cell::Str(s) => crate::ids::has_long_number(s),
                other => crate::ids::has_long_number(&other.to_text()),
            };
            if long_number {
                pr.add(c, Reason::BadHouseNo);
            }
        }
        let year = match m.get(HF::SurveyYear) {
            Some(c) => match parse::year_be(cells.get(r, c)) {
                Ok(Some(y)) => Some(y),
                Ok(None) => self.opts.default_survey_year.or_else(|| {
                    pr.add(c, Reason::MissingValue);
                    None
                }),
                Err(reason) => {
                    pr.add(c, reason);
                    None
                }
            },
            None => self.opts.default_survey_year,
        };
        let members = match m.get(HF::Members) {
            Some(c) => match parse::whole(cells.get(r, c)) {
                Ok(v) if v.is_none_or(|v| v <= u16::MAX as u64) => v.map(|v| v as u16),
                _ => {
                    pr.add(c, Reason::BadNumber);
                    None
                }
            },
            None => None,
        };
        let income = match m.get(HF::IncomePerMember) {
            Some(c) => parse::number(cells.get(r, c)).unwrap_or_else(|reason| {
                pr.add(c, reason);
                None
            }),
            None => None,
        };
        let (mut fail, mut na, mut missing) = read_statuses(b, r, &m.indicators, self.opts.one_means, pre, &mut pr);

        if !pr.problems.is_empty() {
            if let Some(id) = id {
                out.rejected_ids.push(id.0);
            }
            out.rejects.push(pr.into_rejection(b, r, row));
            return;
        }
        if let (Some((i, threshold)), Some(inc)) = (self.income, income) {
            let bit = 1u64 << i;
            let derived_fail = inc < threshold;
            let reported = m.indicators.iter().any(|&(j, _)| j == i);
            if reported && (missing | na) & bit == 0 && (fail & bit != 0) != derived_fail {
                out.notes.income_status_overruled += 1;
            }
            out.notes.income_status_derived += 1;
            na &= !bit;
            missing &= !bit;
            if derived_fail { fail |= bit } else { fail &= !bit }
        }
        let h = &mut out.households;
        h.id.push(id.expect("no problems"));
        h.village.push(village.expect("no problems"));
        h.house_id.push(house_id);
        match cells.at(r, m.get(HF::HouseNo)) {
            Cell::Str(s) => h.house_no.push(&crate::thai::fold_digits(parse::trim_text(s))),
            Cell::Null => h.house_no.push(""),
            c => h.house_no.push(&c.to_text()),
        }
        h.survey_year.push(year.expect("no problems"));
        h.income_per_member.push(income);
        h.statuses.push(fail, na, missing);
        h.source_row.push(row);
        out.members_given.push(members);
    }
}
