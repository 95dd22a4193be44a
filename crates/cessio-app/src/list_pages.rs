//! The lists the app computes whole, a page at a time over the API (`crate::paging`): each
//! list's own function computes it as its page shows it, and the page is a slice of it in
//! the order of a key unique per row. The order is the list's own where it has one (F1 and
//! F5 by type or codice tributo and year, F3 by type, year and cedente, the delegations a
//! party granted newest first, suspensions and risk hits by id, bank clients by codice
//! fiscale, the delegations held by the party's name); F2's holdings and F5's choices go by
//! rata. The pages in the browser keep calling the whole lists.

use cessio_core::ledger::{PartyId, RataId, TransferId};
use chrono::{DateTime, NaiveDate, Utc};

use crate::paging::{Desc, Listing, Page, PageRequest};
use crate::{
    App, AppError, BankClientEntry, CedibleHolding, ChoiceRow, DelegationView, F24AvailabilityRow,
    HeldDelegation, IncomingFilter, IncomingGroup, MonitorRow, Principal, RiskHitFilter,
    RiskHitView, SuspensionView,
};

impl App {
    /// F1, a page at a time by type and reference year.
    pub async fn monitoring_page(
        &self,
        p: &Principal,
        party: PartyId,
        as_of: Option<NaiveDate>,
        page: &PageRequest,
    ) -> Result<Page<MonitorRow>, AppError> {
        let filter = &as_of;
        let at = page.position(Listing { filter })?;
        let rows = self.monitoring(p, party, as_of).await?;
        Ok(at.slice(rows, |r| (r.type_key.clone(), r.year), filter))
    }

    /// F2, a page at a time by rata.
    pub async fn cedible_page(
        &self,
        p: &Principal,
        party: PartyId,
        page: &PageRequest,
    ) -> Result<Page<CedibleHolding>, AppError> {
        let at = page.position::<RataId, _>(Listing { filter: &() })?;
        let rows = self.cedible(p, party).await?;
        Ok(at.slice(rows, |h| h.rata, &()))
    }

    /// F3's groups, a page at a time by type, year and cedente. R-1000 is the law's
    /// platform's rule on the operations the filters select, not a page size: it refuses
    /// every page of a selection over it, as it refuses the whole list.
    pub async fn incoming_page(
        &self,
        p: &Principal,
        party: PartyId,
        filter: &IncomingFilter,
        page: &PageRequest,
    ) -> Result<Page<IncomingGroup>, AppError> {
        let at = page.position(Listing { filter })?;
        let rows = self.incoming(p, party, filter).await?;
        Ok(at.slice(
            rows,
            |g| (g.type_key.clone(), g.year, g.cedente.cf.clone()),
            filter,
        ))
    }

    /// F5's availability, a page at a time by codice tributo and year.
    pub async fn f24_availability_page(
        &self,
        p: &Principal,
        party: PartyId,
        page: &PageRequest,
    ) -> Result<Page<F24AvailabilityRow>, AppError> {
        let at = page.position(Listing { filter: &() })?;
        let rows = self.f24_availability(p, party).await?;
        Ok(at.slice(rows, |r| (r.codice_tributo.clone(), r.year), &()))
    }

    /// F5's choices (R-F24-CHOICE), a page at a time by rata.
    pub async fn f24_choices_page(
        &self,
        p: &Principal,
        party: PartyId,
        page: &PageRequest,
    ) -> Result<Page<ChoiceRow>, AppError> {
        let at = page.position::<RataId, _>(Listing { filter: &() })?;
        let rows = self.f24_choices(p, party).await?;
        Ok(at.slice(rows, |r| r.rata, &()))
    }

    /// The delegations `party` granted, a page at a time, newest first (up to the
    /// `DELEGATIONS_LISTED` the list holds).
    pub async fn delegations_granted_page(
        &self,
        p: &Principal,
        party: PartyId,
        page: &PageRequest,
    ) -> Result<Page<DelegationView>, AppError> {
        let at = page.position::<Desc<i64>, _>(Listing { filter: &() })?;
        let rows = self.delegations_granted(p, party).await?;
        Ok(at.slice(rows, |d| Desc(d.id), &()))
    }

    /// The parties the user holds a live delegation for, a page at a time by name.
    pub async fn delegations_held_page(
        &self,
        p: &Principal,
        page: &PageRequest,
    ) -> Result<Page<HeldDelegation>, AppError> {
        let at = page.position::<(String, PartyId, DateTime<Utc>), _>(Listing { filter: &() })?;
        let rows = self.delegations_held(p).await?;
        Ok(at.slice(
            rows,
            |h| (h.party.name.clone(), h.party.id, h.granted_at),
            &(),
        ))
    }

    /// R-BANK-CLIENT: a bank's current relations, a page at a time by the client's codice
    /// fiscale.
    pub async fn bank_clients_page(
        &self,
        p: &Principal,
        bank_cf: &str,
        page: &PageRequest,
    ) -> Result<Page<BankClientEntry>, AppError> {
        let at = page.position::<String, _>(Listing { filter: &() })?;
        let rows = self.bank_clients(p, bank_cf).await?;
        Ok(at.slice(rows, |c| c.client_cf.clone(), &()))
    }

    /// R-SUSP: the suspensions, a page at a time by communication.
    pub async fn suspensions_page(
        &self,
        p: &Principal,
        open_only: bool,
        page: &PageRequest,
    ) -> Result<Page<SuspensionView>, AppError> {
        let filter = &open_only;
        let at = page.position::<TransferId, _>(Listing { filter })?;
        let rows = self.suspensions(p, open_only).await?;
        Ok(at.slice(rows, |s| s.transfer, filter))
    }

    /// F9's risk hits, a page at a time, oldest first.
    pub async fn risk_hits_page(
        &self,
        p: &Principal,
        filter: &RiskHitFilter,
        page: &PageRequest,
    ) -> Result<Page<RiskHitView>, AppError> {
        let at = page.position::<i64, _>(Listing { filter })?;
        let rows = self.risk_hits(p, filter).await?;
        Ok(at.slice(rows, |h| h.id, filter))
    }
}
