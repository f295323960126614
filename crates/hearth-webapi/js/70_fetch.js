// 70_fetch
