"""C2: the target's database schema is complete for multi-tenancy."""

from __future__ import annotations

import pytest

from harness.database.tenancy import tenancy_findings
from harness.report.evidence import Evidence, not_applicable
from harness.target.running import Target


@pytest.mark.decides("C2")
def test_every_business_table_is_tenant_scoped(target: Target, evidence: Evidence) -> None:
    """Every business table has `org_id` with a foreign key to the organisation table, and row-level security forced."""
    database = target.config.database
    if database is None or target.database_url is None:
        not_applicable("the harness may not read this target's database ([database] in the config)")
    findings = tenancy_findings(
        target.database_url,
        global_tables=database.global_tables,
        org_table=database.org_table,
        org_column=database.org_column,
    )
    assert findings, "no business table found: nothing to decide"
    for finding in findings:
        evidence.add(finding.line())
    gaps = [f for f in findings if f.missing]
    assert not gaps, f"{len(gaps)} of {len(findings)} business tables incomplete: " + "; ".join(f.line() for f in gaps)
    evidence.add(f"all {len(findings)} business tables carry {database.org_column}, its foreign key, and forced RLS")
