// 40_clone
