#!/usr/bin/env python3
"""ctest_skips.py JUNIT_XML CUDA_LIST OUT: which tests of a ctest run were skipped, and which of
those carry the label "cuda".

JUNIT_XML is ctest's --output-junit file, CUDA_LIST the output of `ctest -N -L '^cuda$'` (lines
"  Test #12: Name"). OUT gets one line per skipped test: "cuda NAME" or "other NAME". Prints the
two counts, "CUDA OTHER". Used by scripts/gpu-check.sh's test phase: on a GPU machine every
cuda-labelled test must run, while a skip elsewhere (the engine's no-GPU message test, MNIST cases
without the data) is only listed.
"""
import re
import sys
import xml.etree.ElementTree as ET


def main():
    junit, cuda_list, out = sys.argv[1:4]
    skipped = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.get("status") in ("notrun", "disabled") or case.find("skipped") is not None:
            skipped.append(case.get("name"))
    cuda = set(re.findall(r"Test +#\d+: (\S+)", open(cuda_list).read()))
    n_cuda = n_other = 0
    with open(out, "w") as f:
        for name in skipped:
            if name in cuda:
                n_cuda += 1
                f.write(f"cuda {name}\n")
            else:
                n_other += 1
                f.write(f"other {name}\n")
    print(n_cuda, n_other, len(cuda))


if __name__ == "__main__":
    main()
