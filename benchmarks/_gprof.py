import torch, time
from dagmm import DAGMM
from dagmm.estimator import build_module
from dagmm.engine.training import make_generators
dev=torch.device("cuda")
for R in (1,20):
    est=DAGMM.from_paper("kddcup")
    m=build_module(est,R,118); m.reset_parameters(make_generators(range(R))); m.to(dev)
    X=torch.rand(20000,118,device=dev); idx=torch.randint(0,20000,(R,1024),device=dev); mask=torch.ones(R,1024,10,device=dev)
    opt=torch.optim.Adam(m.parameters(),lr=1e-4,fused=True)
    def step():
        loss,_=m.loss(X[idx],mask,lambda_energy=0.1,lambda_cov=0.005); opt.zero_grad(set_to_none=True); loss.sum().backward(); opt.step()
    for _ in range(20): step()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(20): step()
        torch.cuda.synchronize()
    print(R, prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
