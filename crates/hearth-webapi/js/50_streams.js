// 50_streams
