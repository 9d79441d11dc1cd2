"""uegan_tf.precision: reading the CPU's bfloat16 flags."""

from uegan_tf import precision


def test_cpu_flags_parse_and_bf16_detection(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: X\n"
        "flags\t\t: fpu sse2 avx512f avx512_bf16 amx_tile\n\n"
        "processor\t: 1\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_tile\n"
    )
    flags = precision.cpu_flags.__wrapped__(str(info))
    assert flags == {"fpu", "sse2", "avx512f", "avx512_bf16", "amx_tile"}
    assert precision.cpu_has_bf16(flags)
    assert precision.cpu_has_bf16(frozenset({"amx_bf16"}))
    assert not precision.cpu_has_bf16(frozenset({"avx512f", "avx2"}))
    # Unreadable (non-Linux): no flags, reported as no native bfloat16.
    assert precision.cpu_flags.__wrapped__(str(tmp_path / "nope")) == set()
