/* What a first touch of fresh anonymous memory costs on this machine, apart from tpmap
   (docs/bench/national-reading.txt, fifteenth session). Build and run:
     cc -O2 -o first-touch docs/bench/first-touch.c && ./first-touch 4 0   # 4 GB, 4 KiB pages
     ./first-touch 4 1   # the same with madvise(MADV_HUGEPAGE) */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <string.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  if(argc!=3){fprintf(stderr,"usage: first-touch GB HUGE(0|1)\n");return 2;}
  size_t gb=atol(argv[1]); int huge=atoi(argv[2]);
  size_t n=gb<<30;
  char*p=mmap(0,n+(2<<20),PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);
  if(p==MAP_FAILED){perror("mmap");return 1;}
  char*a=(char*)(((size_t)p+(2<<20)-1)&~((size_t)(2<<20)-1));
  if(huge==1) madvise(a,n,MADV_HUGEPAGE); else if (huge==0) madvise(a,n,MADV_NOHUGEPAGE);
  double t=now();
  for(size_t i=0;i<n;i+=4096) a[i]=1;
  double t1=now();
  printf("touch %zu GB huge=%d: %.3f s (%.2f GB/s)\n",gb,huge,t1-t,gb/(t1-t));
  t=now(); memset(a,2,n); printf("memset after: %.3f s\n", now()-t);
  return 0;}
