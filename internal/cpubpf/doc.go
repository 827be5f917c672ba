package cpubpf
