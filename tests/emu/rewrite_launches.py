#!/usr/bin/env python3
"""rewrite_launches.py IN OUT: copy a CUDA source with its kernel launches in plain C++.

    K<<<G, B, S, T>>>(A...)   ->   ::ll::emu::launch("K", ::ll::emu::config(G, B, S, T),
                                                     [&](auto&&... ll_p) { K(ll_p...); }, A...)

(also the 2- and 3-argument <<<>>> forms, which config's defaults complete). K is the kernel's name,
possibly qualified and with template arguments; the lambda calls it, so template arguments that the
original call deduced from A are deduced the same way. Newlines are kept where they were and the
output starts with a #line directive, so diagnostics and __FILE__ / __LINE__ name the original.
The CUDA emulator (tests/emu/include/ll_emu.h) provides launch and config.

Two more rewrites, each on the line where the original text is (so line numbers stay):
  __shared__ T name[...];        ->  __shared__ T name[...]; ::ll::emu::shared_var(&name, sizeof(name), "name");
      (the emulator poisons it at its first use in each block and checks the block's static
      shared memory against 48 KB)
  __launch_bounds__(N) K(...) {  ->  __launch_bounds__(N) K(...) { ::ll::emu::check_launch_bounds(N, "K");
      and launches of K in the same file become ::ll::emu::launch<true>(...), which probes the
      bound before enqueueing, so a block larger than N fails as on the GPU.
"""
import re
import sys

IDENT = re.compile(r"[A-Za-z0-9_:]")


def kernel_start(text, end):
    """Start of the kernel expression that ends just before `end` (where <<< begins)."""
    i = end
    while i > 0 and text[i - 1].isspace():
        i -= 1
    if i > 0 and text[i - 1] == ">":  # template arguments: match the angle brackets backwards
        depth = 0
        while i > 0:
            i -= 1
            c = text[i]
            if c == ">":
                depth += 1
            elif c == "<":
                depth -= 1
                if depth == 0:
                    break
        else:
            raise ValueError("unbalanced template arguments before <<<")
    while i > 0 and IDENT.match(text[i - 1]):
        i -= 1
    return i


def matching_paren(text, open_at):
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == "(":
            depth += 1
        elif text[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    raise ValueError("unbalanced parentheses after >>>")


SHARED = re.compile(r"\b__shared__\s+([^;{}()]*?)\b([A-Za-z_]\w*)\s*((?:\[[^\];]*\]\s*)*);")
BOUNDS = re.compile(r"\b__launch_bounds__\s*\(")


def rewrite_shared(text):
    def repl(m):
        if text[max(0, m.start() - 7):m.start()].strip() == "extern":  # dynamic shared memory
            return m.group(0)
        name = m.group(2)
        return '%s ::ll::emu::shared_var(&%s, sizeof(%s), "%s");' % (m.group(0), name, name, name)
    return SHARED.sub(repl, text)


def rewrite_bounds(text):
    """Inserts the bound check first in each __launch_bounds__ kernel; returns (text, names)."""
    names = set()
    out = []
    pos = 0
    for m in BOUNDS.finditer(text):
        if m.start() < pos:
            continue
        close = matching_paren(text, m.end() - 1)
        bound = text[m.end():close]
        name_m = re.compile(r"\s*([A-Za-z_]\w*)\s*\(").match(text, close + 1)
        if not name_m:
            raise ValueError("no kernel name after __launch_bounds__")
        name = name_m.group(1)
        params_close = matching_paren(text, name_m.end() - 1)
        brace = text.find("{", params_close)
        if brace < 0 or text[params_close + 1:brace].strip():
            raise ValueError("no body after the parameters of %s" % name)
        out.append(text[pos:brace + 1])
        out.append(' ::ll::emu::check_launch_bounds(%s, "%s");' % (bound, name))
        pos = brace + 1
        names.add(name)
    out.append(text[pos:])
    return "".join(out), names


def base_name(kernel):
    k = kernel
    if "<" in k:
        k = k[:k.index("<")]
    return k.split("::")[-1].strip()


def rewrite(text):
    text = rewrite_shared(text)
    text, bounded = rewrite_bounds(text)
    out = []
    pos = 0
    while True:
        lt = text.find("<<<", pos)
        if lt < 0:
            out.append(text[pos:])
            return "".join(out)
        start = kernel_start(text, lt)
        kernel = text[start:lt].strip()
        gt = text.find(">>>", lt)
        if gt < 0:
            raise ValueError("<<< without >>>")
        cfg = text[lt + 3:gt]
        k = gt + 3
        while text[k].isspace():
            k += 1
        if text[k] != "(":
            raise ValueError("no argument list after >>>")
        close = matching_paren(text, k)
        args = text[k + 1:close]
        between = text[gt + 3:k]  # whitespace (maybe newlines) between >>> and (
        name = " ".join(kernel.split())
        launch = ('::ll::emu::launch%s("%s", ::ll::emu::config(%s),%s [&](auto&&... ll_p) { %s(ll_p...); }%s%s)'
                  % ("<true>" if base_name(kernel) in bounded else "", name, cfg, between, kernel,
                     "," if args.strip() else "", args))
        out.append(text[pos:start])
        out.append(launch)
        pos = close + 1


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        text = f.read()
    try:
        body = rewrite(text)
    except ValueError as e:
        sys.exit("%s: %s" % (src, e))
    with open(dst, "w", encoding="utf-8") as f:
        f.write('#line 1 "%s"\n' % src)
        f.write(body)


if __name__ == "__main__":
    main()
