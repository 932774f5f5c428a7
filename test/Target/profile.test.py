"""Checks the profile record of a 3-step run of the tiny MoE (profile.test)."""
import json
import sys

records = [json.loads(line) for line in open(sys.argv[1])]
profile = [r["profile"] for r in records if "profile" in r]
assert len(profile) == 1, f"expected one profile record, got {len(profile)}"
profile = profile[0]
assert profile["function"] == "train_step" and profile["steps"] == 2, profile
sites = profile["sites"]
assert all(site["calls"] == 2 for site in sites), [
    site for site in sites if site["calls"] != 2]
timed = sum(site["seconds"] for site in sites)
assert 0 < timed <= profile["seconds"], (timed, profile["seconds"])
experts = [s for s in sites if s["kernel"] == "expertFfn"]
assert [s["location"] for s in experts] == [
    f"model.layers.{i}.block_sparse_moe" for i in range(4)], experts
# 3 products per expert of its rows under balanced routing (64 tokens * 2
# / 8 experts = 16) by [128 x 352]: 2 * 3 * 8 * 16 * 352 * 128 flops.
assert all(s["flops"] == 2 * 3 * 8 * 16 * 352 * 128 for s in experts), experts
assert all(s["flops"] == 0 and s["bytes"] > 0 for s in sites
           if s["kernel"] == "copy")
print(f"{len(sites)} sites, {timed * 1e3:.2f} ms of "
      f"{profile['seconds'] * 1e3:.2f} ms timed")
