"""The edge page says which plugins an edge does not offer, and why."""
from __future__ import annotations

import uuid


def test_edge_page_explains_missing_queue_info(portal, bridge_url, make_edge, tmp_path):
    name = f"plain{uuid.uuid4().hex[:4]}"
    # no scheduler tools on PATH, no job id: queue_info is off, and the edge says why
    make_edge(plugins="sysinfo,queue_info", name=name,
              env={"PATH": str(tmp_path), "SLURM_JOB_ID": "", "PBS_JOBID": ""})
    page = portal.open(bridge_url, f"/e/{name}")
    page.wait_for_selector("[data-testid=disconnect-edge]")
    main = page.locator("#main")
    main.get_by_text("Unavailable plugins").wait_for()
    text = main.inner_text()
    assert "no batch system detected (SLURM/PBS)" in text
    portal.shot("edge-unavailable-plugins")
