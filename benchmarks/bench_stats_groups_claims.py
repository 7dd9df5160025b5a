"""Group-comparison size/power and claim false-support simulation (issue 9); prints markdown tables."""

from lfr_eval.simulation import ClusterDesign as D, group_test_rejection, claim_support_rate
print("| groups | icc | rate | people/group | searches/person | size (equal rates) | power (one group 2x) | power (one group 3x) |")
print("|---|---|---|---|---|---|---|---|")
for G in (2,4,10):
  for icc in (0.0,0.2,0.5):
    for rate,s in ((0.01,150),(0.001,1000)):
      ms=[5,10,20,40,2,8,15,30,3,50][:G]
      r=group_test_rejection([D(s,m,icc,rate,True) for m in ms],n_datasets=400,seed=1)
      a=group_test_rejection([D(s,m,icc,rate*(2 if i==0 else 1),True) for i,m in enumerate(ms)],n_datasets=300,seed=2)
      b=group_test_rejection([D(s,m,icc,rate*(3 if i==0 else 1),True) for i,m in enumerate(ms)],n_datasets=300,seed=3)
      print(f"| {G} | {icc} | {rate} | {s} | {','.join(map(str,ms))} (unequal) | {r.any_pair:.3f} | {a.any_pair:.3f} | {b.any_pair:.3f} |",flush=True)
print()
print("| people x searches | icc | true FPIR | claimed bound | supported: korn-graubard | supported: search-level CP |")
print("|---|---|---|---|---|---|")
for s,m in ((2000,10),(500,40),(200,100)):
  for icc in (0.0,0.1,0.3):
    for truth,bound in ((1/4000,1/6000),(1e-3,1e-3),(1/3000,1e-3)):
      d=D(s,m,icc,truth)
      k=claim_support_rate(d,bound,n_datasets=1000,seed=5); c=claim_support_rate(d,bound,"clopper-pearson (independence)",n_datasets=1000,seed=5)
      print(f"| {s}x{m} | {icc} | {truth:.3g} | {bound:.3g} | {k.supported:.3f} | {c.supported:.3f} |",flush=True)
