/* What one synapse-step of e-prop's learning loop costs on a sparse (CSR) projection, by how the
 * loop walks the synapses: the floor under benchmarks/deep_r_sparse.py --algorithm eprop (see
 * benchmarks/README.md, "deep_r_sparse.py").
 *
 *     gcc -O3 -march=native -std=c99 -fno-math-errno -D_POSIX_C_SOURCE=200809L \
 *         --param=vect-max-version-for-alias-checks=64 -fno-loop-unroll-and-jam -fno-split-loops \
 *         -fno-split-paths benchmarks/eprop_sparse_walks.c -o /tmp/walks
 *     /tmp/walks 700 20000 && /tmp/walks 256 40000     # x_to_h, h_to_h: pre neurons, steps
 *
 * One batch row of `learn__h`'s loop for an LIF layer of 256 with Delta synapses (the arithmetic as
 * snnc prints it), random 10 % connectivity, z_pre 2 % and refractory 5 % of the time (64 steps of
 * random values, cycled). Prints CPU nanoseconds per synapse and step of each walk:
 *   A: pre-major (CSR, weight-slot order), post values gathered (vectorised: 16-lane gathers);
 *   B: the same kept scalar;  C, Cs: the four post values packed side by side, vectorised / scalar;
 *   D: post-major, per-synapse arrays in that order, post values loop-invariant, z_pre gathered;
 *   E: post-major with z_pre read per synapse in order (what snnc prints now).
 * The sums differ between walks (each draws its own random values): only the times compare.
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
typedef float scalar;
#define NPOST 256
static double now(void){struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID,&t); return t.tv_sec+1e-9*t.tv_nsec;}

/* A: CSR walk, as generated */
__attribute__((noinline)) void varA(int npre, const int32_t* restrict rp, const int32_t* restrict ci,
  const float* restrict zp, float* restrict ee, float* restrict ef, float* restrict eg,
  const float* restrict erf, const float* restrict epsi, const float* restrict ea, const float* restrict eL){
  for (int64_t i=0;i<npre;i++) for (int64_t q=rp[i];q<rp[i+1];q++){
    const int64_t j=ci[q]; const scalar z=zp[i]; const scalar o=ee[q];
    const scalar n=o*(0.0487705755F*erf[j]+0.951229424F)+z*(0.0487705755F-0.0487705755F*erf[j]);
    const scalar e=n*epsi[j]; const scalar eb=ef[q];
    eg[q]+=e*(0.001F*ea[j]-1.0e-5F)+eb*eL[j];
    ef[q]=e+0.951229424F*eb; ee[q]=n; }
}
__attribute__((noinline,optimize("no-tree-vectorize"))) void varB(int npre, const int32_t* restrict rp, const int32_t* restrict ci,
  const float* restrict zp, float* restrict ee, float* restrict ef, float* restrict eg,
  const float* restrict erf, const float* restrict epsi, const float* restrict ea, const float* restrict eL){
  for (int64_t i=0;i<npre;i++) for (int64_t q=rp[i];q<rp[i+1];q++){
    const int64_t j=ci[q]; const scalar z=zp[i]; const scalar o=ee[q];
    const scalar n=o*(0.0487705755F*erf[j]+0.951229424F)+z*(0.0487705755F-0.0487705755F*erf[j]);
    const scalar e=n*epsi[j]; const scalar eb=ef[q];
    eg[q]+=e*(0.001F*ea[j]-1.0e-5F)+eb*eL[j];
    ef[q]=e+0.951229424F*eb; ee[q]=n; }
}
/* C: packed post values, CSR walk */
__attribute__((noinline)) void varC(int npre, const int32_t* restrict rp, const int32_t* restrict ci,
  const float* restrict zp, float* restrict ee, float* restrict ef, float* restrict eg,
  const float* restrict pk){
  for (int64_t i=0;i<npre;i++) for (int64_t q=rp[i];q<rp[i+1];q++){
    const int64_t j=ci[q]; const scalar z=zp[i]; const scalar o=ee[q];
    const scalar rf=pk[4*j], ps=pk[4*j+1], a=pk[4*j+2], L=pk[4*j+3];
    const scalar n=o*(0.0487705755F*rf+0.951229424F)+z*(0.0487705755F-0.0487705755F*rf);
    const scalar e=n*ps; const scalar eb=ef[q];
    eg[q]+=e*(0.001F*a-1.0e-5F)+eb*L;
    ef[q]=e+0.951229424F*eb; ee[q]=n; }
}
__attribute__((noinline,optimize("no-tree-vectorize"))) void varCs(int npre, const int32_t* restrict rp, const int32_t* restrict ci,
  const float* restrict zp, float* restrict ee, float* restrict ef, float* restrict eg,
  const float* restrict pk){
  for (int64_t i=0;i<npre;i++) for (int64_t q=rp[i];q<rp[i+1];q++){
    const int64_t j=ci[q]; const scalar z=zp[i]; const scalar o=ee[q];
    const scalar rf=pk[4*j], ps=pk[4*j+1], a=pk[4*j+2], L=pk[4*j+3];
    const scalar n=o*(0.0487705755F*rf+0.951229424F)+z*(0.0487705755F-0.0487705755F*rf);
    const scalar e=n*ps; const scalar eb=ef[q];
    eg[q]+=e*(0.001F*a-1.0e-5F)+eb*L;
    ef[q]=e+0.951229424F*eb; ee[q]=n; }
}
/* D: CSC walk (post-major), arrays in CSC order, z_pre gathered */
__attribute__((noinline)) void varD(const int32_t* restrict cp, const int32_t* restrict ri,
  const float* restrict zp, float* restrict ee, float* restrict ef, float* restrict eg,
  const float* restrict erf, const float* restrict epsi, const float* restrict ea, const float* restrict eL){
  for (int64_t j=0;j<NPOST;j++) for (int64_t s=cp[j];s<cp[j+1];s++){
    const int64_t i=ri[s]; const scalar z=zp[i]; const scalar o=ee[s];
    const scalar n=o*(0.0487705755F*erf[j]+0.951229424F)+z*(0.0487705755F-0.0487705755F*erf[j]);
    const scalar e=n*epsi[j]; const scalar eb=ef[s];
    eg[s]+=e*(0.001F*ea[j]-1.0e-5F)+eb*eL[j];
    ef[s]=e+0.951229424F*eb; ee[s]=n; }
}
__attribute__((noinline)) void varE(const int32_t* restrict cp,
  const float* restrict zs, float* restrict ee, float* restrict ef, float* restrict eg,
  const float* restrict erf, const float* restrict epsi, const float* restrict ea, const float* restrict eL){
  for (int64_t j=0;j<NPOST;j++) for (int64_t s=cp[j];s<cp[j+1];s++){
    const scalar z=zs[s]; const scalar o=ee[s];
    const scalar n=o*(0.0487705755F*erf[j]+0.951229424F)+z*(0.0487705755F-0.0487705755F*erf[j]);
    const scalar e=n*epsi[j]; const scalar eb=ef[s];
    eg[s]+=e*(0.001F*ea[j]-1.0e-5F)+eb*eL[j];
    ef[s]=e+0.951229424F*eb; ee[s]=n; }
}

int main(int argc,char**argv){
  int npre = atoi(argv[1]); int steps = atoi(argv[2]); double p=0.1;
  srand(1);
  int32_t* rp=malloc(sizeof(int32_t)*(npre+1)); int32_t* ci=malloc(sizeof(int32_t)*npre*NPOST);
  int nnz=0; rp[0]=0;
  for(int i=0;i<npre;i++){ for(int j=0;j<NPOST;j++) if(rand()<p*RAND_MAX) ci[nnz++]=j; rp[i+1]=nnz; }
  int32_t* cp=calloc(NPOST+1,4); int32_t* ri=malloc(4*nnz);
  for(int q=0;q<nnz;q++) cp[ci[q]+1]++;
  for(int j=0;j<NPOST;j++) cp[j+1]+=cp[j];
  int32_t* fill=malloc(4*NPOST); memcpy(fill,cp,4*NPOST);
  int32_t* pos=malloc(4*nnz);
  for(int i=0;i<npre;i++) for(int q=rp[i];q<rp[i+1];q++){ pos[q]=fill[ci[q]]; ri[fill[ci[q]]++]=i; }
  float *zp2=calloc(nnz,4), *zold=calloc(npre,4); float *ee=calloc(nnz,4),*ef=calloc(nnz,4),*eg=calloc(nnz,4),*zp=calloc(npre,4);
  float *erf=calloc(NPOST,4),*epsi=calloc(NPOST,4),*ea=calloc(NPOST,4),*eL=calloc(NPOST,4),*pk=calloc(4*NPOST,4);
  const char* names[]={"A csr gather","B csr scalar","C csr packed","Cs csr packed scalar","D csc","E csc zs"};
  for(int v=0;v<6;v++){
    memset(ee,0,4*nnz);memset(ef,0,4*nnz);memset(eg,0,4*nnz);
    double t0=now();
    for(int k=0;k<steps;k++){
      if(k<64){ for(int i=0;i<npre;i++) zp[i]=(rand()%50)==0;
      for(int j=0;j<NPOST;j++){erf[j]=(rand()%20)==0; epsi[j]=0.1f*(j%7); ea[j]=0.01f; eL[j]=0.001f*(j%5);
        pk[4*j]=erf[j];pk[4*j+1]=epsi[j];pk[4*j+2]=ea[j];pk[4*j+3]=eL[j];} }
      switch(v){case 0: varA(npre,rp,ci,zp,ee,ef,eg,erf,epsi,ea,eL);break;
        case 1: varB(npre,rp,ci,zp,ee,ef,eg,erf,epsi,ea,eL);break;
        case 2: varC(npre,rp,ci,zp,ee,ef,eg,pk);break;
        case 3: varCs(npre,rp,ci,zp,ee,ef,eg,pk);break;
        case 4: varD(cp,ri,zp,ee,ef,eg,erf,epsi,ea,eL);break;
        case 5: /* z_pre per synapse, cleared and set along the rows of spiking pre neurons */
          for(int i=0;i<npre;i++) if(zold[i]!=0) for(int q=rp[i];q<rp[i+1];q++) zp2[pos[q]]=0;
          for(int i=0;i<npre;i++){ zold[i]=zp[i]; if(zp[i]!=0) for(int q=rp[i];q<rp[i+1];q++) zp2[pos[q]]=1; }
          varE(cp,zp2,ee,ef,eg,erf,epsi,ea,eL);break;}
    }
    double t=now()-t0; double s=0; for(int q=0;q<nnz;q++) s+=eg[q];
    printf("%-22s nnz %d: %.3f ns/syn-step sum %g\n",names[v],nnz,1e9*t/steps/nnz,s);
  }
}
