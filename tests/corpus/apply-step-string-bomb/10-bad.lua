recipe "x" {
  step "a" { function() local s = ("x"):rep(1e6) for i = 1, 100 do s = s .. s end end },
}
