/* A first touch of fresh anonymous memory a page at a time against one madvise(MADV_POPULATE_WRITE)
   over the range (docs/bench/national-reading.txt, thirty-fifth session). Build and run:
     cc -O2 -o populate-write docs/bench/populate-write.c
     ./populate-write 4 0   # 4 GB, a byte written a page
     ./populate-write 4 1   # 4 GB, populated in one call */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <string.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  if(argc!=3){fprintf(stderr,"usage: populate-write GB MODE(0: a byte a page, 1: one MADV_POPULATE_WRITE)\n");return 2;}
  size_t gb=atol(argv[1]); int mode=atoi(argv[2]);
  size_t n=gb<<30;
  char*a=mmap(0,n,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);
  if(a==MAP_FAILED){perror("mmap");return 1;}
  madvise(a,n,MADV_NOHUGEPAGE);
  double t=now();
  if(mode==0){for(size_t i=0;i<n;i+=4096) a[i]=1;}
  else if(madvise(a,n,MADV_POPULATE_WRITE)){perror("madvise");return 1;}
  double t1=now();
  printf("mode %d %zu GB: %.3f s (%.2f GB/s)\n",mode,gb,t1-t,gb/(t1-t));
  t=now(); memset(a,2,n); printf("memset after: %.3f s\n", now()-t);
  return 0;}
