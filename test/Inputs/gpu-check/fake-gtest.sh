#!/usr/bin/env bash
# A stand-in for moe-cuda-kernel-tests: three tests that pass, skip (a test
# that does not apply to this GPU) and fail, as gtest reports them.
case $1 in
--gtest_list_tests)
  printf 'Fake.\n  Passes\n  Skips\n  Fails\n'
  ;;
--gtest_filter=Fake.Passes)
  echo "[  PASSED  ] 1 test."
  ;;
--gtest_filter=Fake.Skips)
  printf '[  PASSED  ] 0 tests.\n[  SKIPPED ] 1 test, listed below:\n'
  ;;
--gtest_filter=Fake.Fails)
  echo "[  FAILED  ] 1 test, listed below:"
  exit 1
  ;;
esac
